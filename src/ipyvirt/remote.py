"""Remote transports: ssh kept from asking anything, and SSH's and TLS's failures in one line.

libvirt's ``ssh`` transport runs the system ``ssh``. Given a terminal, ssh asks there (is
this host key right? the password?); a kernel has none, and a notebook server started from
a terminal would leave ssh asking in that terminal, where no one looks, with the cell hung.
So ipyvirt opens ``+ssh`` URIs with libvirt's ``no_tty=1`` (ssh's ``BatchMode=yes``): ssh
fails at once instead of asking, and :func:`explain` says what to do in one line. Unknown
host keys and passwords belong in a terminal, once (``ssh``, then ``ssh-copy-id``): the
external ssh never sees libvirt's credential callback, so ``--auth`` cannot answer for it.

What ssh and GnuTLS say reaches us wrapped in libvirt's socket errors ("Cannot recv data:
... : Connection reset by peer", several lines of ssh's stderr); :func:`explain` finds the
cause in it.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

__all__ = ["explain", "noninteractive"]

_WRAPPED = re.compile(
    r"^(?:Cannot recv data|End of file while reading data|Cannot write data): (?P<said>.*?)"
    r"(?:: (?:Connection reset by peer|Input/output error|Broken pipe))?$",
    re.S,
)


def transport(uri: str) -> str:
    """The transport of *uri* (``ssh`` for ``qemu+ssh://``), or ``""``."""
    scheme = urlsplit(uri).scheme if "://" in uri else ""
    return scheme.partition("+")[2].lower()


def noninteractive(uri: str) -> str:
    """*uri*, with ``no_tty=1`` if it goes over the ``ssh`` transport and does not set it."""
    if transport(uri) != "ssh" or "no_tty" in parse_qs(urlsplit(uri).query, True):
        return uri
    base, hash_, fragment = uri.partition("#")
    return f"{base}{'&' if '?' in base else '?'}no_tty=1{hash_}{fragment}"


def explain(uri: str, why: str) -> str | None:
    """What libvirt's *why* means for *uri*'s SSH or TLS transport, or None."""
    kind = transport(uri)
    if kind == "ssh":
        return _ssh(uri, why)
    if kind == "tls":
        return _tls(uri, why)
    return None


def _ssh(uri: str, why: str) -> str | None:
    wrapped = _WRAPPED.match(why.strip())
    if wrapped is None:
        return None
    said = wrapped["said"].replace("\r", "")
    lines = [line.strip() for line in said.splitlines() if line.strip()]
    last = lines[-1] if lines else said
    parts = urlsplit(uri)
    host = parts.hostname or "localhost"
    port = f"-p {parts.port} " if parts.port else ""
    login = f"{parts.username}@{host}" if parts.username else host
    where = f"{host}:{parts.port}" if parts.port else host
    query = parse_qs(parts.query)
    cannot_run = re.search(r"cannot execute binary (?P<path>\S+): (?P<why>.*)", said)
    if cannot_run is not None:
        return (
            f"cannot run {cannot_run['path']} ({cannot_run['why']}): install openssh-client, "
            "or name your ssh program with ?command=PATH"
        )
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in said:
        known = f"[{host}]:{parts.port}" if parts.port else host
        return (
            f"the host key of {where} is not the one ssh accepted before (someone may be in "
            "between, or the host was reinstalled): if you know why, remove the old one with "
            f"`ssh-keygen -R '{known}'` and accept the new one with `ssh {port}{login}` in a "
            "terminal"
        )
    # Not no_verify=1: ssh then takes a *changed* key too (StrictHostKeyChecking=no), and
    # the URI keeps it for every reconnection. The tests pin that.
    if "Host key verification failed" in said:
        return (
            f"ssh does not know the host key of {where}: check it and accept it once in a "
            f"terminal, with `ssh {port}{login}` (answer yes), then connect again"
        )
    denied = re.search(r"Permission denied \((?P<methods>[^)]*)\)", said)
    if denied is not None:
        key = f"the key {query['keyfile'][0]}" if "keyfile" in query else "your ssh keys"
        if {"password", "keyboard-interactive"} & set(denied["methods"].split(",")):
            return (
                f"{where} did not take {key} and asks for a password, which ssh cannot ask "
                f"here: install your key there once, with `ssh-copy-id {port}{login}` in a "
                "terminal, or name the key with ?keyfile=PATH"
            )
        return f"{where} refused {key} ({denied['methods']}): install your key there"
    if last.startswith("ssh: "):  # ssh could not reach the host: refused, unknown name
        return f"ssh cannot reach {where} ({last[5:]}): is sshd running there, on that port?"
    helper = re.search(r"virt-ssh-helper: cannot connect to '(?P<path>[^']+)'", said)
    if helper is not None and "socket" in query:  # with proxy=auto or native
        return (
            f"no libvirt daemon on {host} at {helper['path']}: virt-ssh-helper ignores "
            "socket=; leave out proxy= and libvirt reaches that socket with nc"
        )
    if helper is not None:
        return (
            f"no libvirt daemon on {host} at {helper['path']}: start it there (e.g. "
            "`sudo systemctl start libvirtd`), or name its socket with ?socket=PATH"
        )
    netcat = query.get("netcat", ["nc"])[0]
    if re.search(rf"\b{re.escape(netcat)}: (not found|command not found)", said):
        return (
            f"{host} has no `{netcat}` to reach the daemon's socket: install netcat-openbsd "
            "there, or leave out ?socket= so that libvirt's virt-ssh-helper finds the daemon"
        )
    socket = query.get("socket", ["the socket"])[0]
    if re.match(rf"{re.escape(netcat)}: ", last):
        return f"no libvirt daemon listens at {socket} on {host} ({last}): start it there"
    return f"ssh: {last}"


def _tls(uri: str, why: str) -> str | None:
    pkipath = parse_qs(urlsplit(uri).query).get("pkipath", [None])[0]
    where = pkipath or "libvirt's default place (/etc/pki/libvirt as root, ~/.pki/libvirt)"
    found = re.search(r"The client certificate (\S+) (has expired|is not yet active)", why)
    if found is not None:
        return (
            f"the client certificate {found[1]} {found[2]}: make a new one, signed by the "
            "daemon's CA, and put it there"
        )
    found = re.search(r"Our own certificate (\S+) failed validation against (\S+): (.*)", why)
    if found is not None:
        return (
            f"the client certificate {found[1]} is not signed by the CA in {found[2]} "
            f"({found[3].rstrip('.')}): put the CA's certificate and one it signed in {where}"
        )
    if "Failed to verify peer's certificate" in why:
        return (
            f"the daemon's certificate does not verify against the CA in {where} (another CA "
            "signed it, or it is not for this host name): put the CA that signed the "
            "daemon's certificate there as cacert.pem"
        )
    if "Unable to read TLS confirmation" in why:
        return (
            f"the daemon refused the client certificate in {where}: it must be signed by a "
            "CA the daemon trusts (its ca_file) and be valid now"
        )
    found = re.search(r"Cannot read (?:CA )?certificate '([^']+)'", why)
    if found is not None:
        return (
            f"no certificate at {found[1]}: a pkipath dir holds cacert.pem, clientcert.pem "
            "and clientkey.pem; name yours with ?pkipath=DIR"
        )
    if re.search(r"unable to connect to server at '[^']+': Connection refused", why):
        return (
            f"{why}: nothing listens with TLS there; is the daemon started with --listen and "
            "listen_tls = 1 (port 16514 unless its tls_port says otherwise)?"
        )
    return None
