"""Why libvirt could not open a URI, said in one line that tells what to do.

libvirt's own message is often about its last guess rather than the mistake: a URI whose
driver does not exist falls through to the remote driver, which then complains about a TLS
certificate (``nonsense://host``) or a missing daemon socket (``nonsense:///x``).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import libvirt

from ipyvirt import remote

__all__ = ["DRIVERS", "explain"]

# The URI schemes of libvirt's hypervisor drivers (each driver's ``uriSchemes`` in libvirt's
# source) and of the modular daemons' secondary drivers. Which of them a host can serve is
# only known to its daemon, and without one libvirt cannot say (an unknown scheme is handed to
# the remote driver and fails there, as above). So the list is fixed, and only consulted
# *after* libvirt has failed: a driver newer than this list still opens.
DRIVERS = (
    "test",
    "qemu",
    "lxc",
    "xen",
    "ch",
    "bhyve",
    "vz",
    "parallels",
    "openvz",
    "vbox",
    "vmwareplayer",
    "vmwarews",
    "vmwarefusion",
    "esx",
    "gsx",
    "vpx",
    "hyperv",
    "remote",
    "interface",
    "network",
    "nodedev",
    "nwfilter",
    "secret",
    "storage",
)

_NO_SOCKET = re.compile(
    r"Failed to connect socket to '(?P<path>[^']+)': (?P<why>No such file or directory|"
    r"Connection refused)"
)


def explain(uri: str, err: libvirt.libvirtError) -> str:
    """What went wrong opening *uri*, and what to do: libvirt's message when nothing better."""
    why = err.get_error_message() or str(err)
    scheme = urlsplit(uri).scheme if "://" in uri else ""  # else maybe a libvirt.conf alias
    driver = scheme.partition("+")[0].lower()
    if driver and driver not in DRIVERS:
        return (
            f"libvirt has no driver {driver!r}: use one of {', '.join(DRIVERS[:6])}, ... "
            "(e.g. test:///default, qemu:///system, qemu+ssh://HOST/system)"
        )
    over_the_network = remote.explain(uri, why)  # ssh's and TLS's causes, in one line
    if over_the_network is not None:
        return over_the_network
    found = _NO_SOCKET.search(why)
    if found is not None:
        return _no_daemon(found["path"], found["why"])
    return why


def _no_daemon(path: str, why: str) -> str:
    missing = "its socket is missing" if why.startswith("No such") else "nothing listens on it"
    daemon = path.rsplit("/", 1)[-1].split("-sock")[0]  # libvirt-sock, virtqemud-sock-ro
    if daemon == "libvirt":
        daemon = "libvirtd"
    if path.startswith(("/run/", "/var/run/")):
        start = f"start it with `sudo systemctl start {daemon}`"
        if daemon == "libvirtd":  # the client asks for it when neither kind of socket exists
            start += " (on hosts with libvirt's modular daemons: virtqemud for qemu)"
    else:
        start = f"start it with `{daemon} --daemon` as yourself"
    return f"no libvirt daemon ({daemon}) runs here: {path}: {missing}; {start}"
