"""Tests against real hypervisors started by the tests themselves (QEMU under libvirtd)."""
