"""The tests' libvirtd: :mod:`ipyvirt.testing.libvirtd`, under the name the tests import."""

from ipyvirt.testing.libvirtd import Libvirtd, LibvirtdUnavailable

__all__ = ["Libvirtd", "LibvirtdUnavailable"]
