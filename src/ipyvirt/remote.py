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


class _Ssh:
    """What ssh said opening a URI, and the URI's parts the one line names."""

    def __init__(self, uri: str, said: str) -> None:
        self.said = said.replace("\r", "")
        lines = [line.strip() for line in self.said.splitlines() if line.strip()]
        self.last = lines[-1] if lines else self.said
        parts = urlsplit(uri)
        self.host = parts.hostname or "localhost"
        self.port = parts.port
        self.query = parse_qs(parts.query)
        user = f"{parts.username}@" if parts.username else ""
        #: what to type in a terminal to log in there: ``ssh {self.login}``
        self.login = f"-p {parts.port} {user}{self.host}" if parts.port else f"{user}{self.host}"
        self.where = f"{self.host}:{parts.port}" if parts.port else self.host


def _ssh(uri: str, why: str) -> str | None:
    wrapped = _WRAPPED.match(why.strip())
    if wrapped is None:
        return None
    ssh = _Ssh(uri, wrapped["said"])
    return _ssh_client(ssh) or _ssh_login(ssh) or _ssh_far_side(ssh) or f"ssh: {ssh.last}"


def _ssh_client(ssh: _Ssh) -> str | None:
    """This side: the ssh program, reaching the host, its host key."""
    cannot_run = re.search(r"cannot execute binary (?P<path>\S+): (?P<why>.*)", ssh.said)
    if cannot_run is not None:
        return (
            f"cannot run {cannot_run['path']} ({cannot_run['why']}): install openssh-client, "
            "or name your ssh program with ?command=PATH"
        )
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in ssh.said:
        known = f"[{ssh.host}]:{ssh.port}" if ssh.port else ssh.host
        return (
            f"the host key of {ssh.where} is not the one ssh accepted before (someone may be "
            "in between, or the host was reinstalled): if you know why, remove the old one "
            f"with `ssh-keygen -R '{known}'` and accept the new one with `ssh {ssh.login}` in "
            "a terminal"
        )
    # Not no_verify=1: ssh then takes a *changed* key too (StrictHostKeyChecking=no), and
    # the URI keeps it for every reconnection. The tests pin that.
    if "Host key verification failed" in ssh.said:
        return (
            f"ssh does not know the host key of {ssh.where}: check it and accept it once in "
            f"a terminal, with `ssh {ssh.login}` (answer yes), then connect again"
        )
    if ssh.last.startswith("ssh: "):  # ssh could not reach the host: refused, unknown name
        return (
            f"ssh cannot reach {ssh.where} ({ssh.last[5:]}): is sshd running there, on that port?"
        )
    return None


def _ssh_login(ssh: _Ssh) -> str | None:
    """The host's sshd refused the login."""
    denied = re.search(r"Permission denied \((?P<methods>[^)]*)\)", ssh.said)
    if denied is None:
        return None
    key = f"the key {ssh.query['keyfile'][0]}" if "keyfile" in ssh.query else "your ssh keys"
    if {"password", "keyboard-interactive"} & set(denied["methods"].split(",")):
        return (
            f"{ssh.where} did not take {key} and asks for a password, which ssh cannot ask "
            f"here: install your key there once, with `ssh-copy-id {ssh.login}` in a "
            "terminal, or name the key with ?keyfile=PATH"
        )
    return f"{ssh.where} refused {key} ({denied['methods']}): install your key there"


def _ssh_far_side(ssh: _Ssh) -> str | None:
    """Logged in: the helper that reaches the daemon's socket there."""
    helper = re.search(r"virt-ssh-helper: cannot connect to '(?P<path>[^']+)'", ssh.said)
    if helper is not None and "socket" in ssh.query:  # with proxy=auto or native
        return (
            f"no libvirt daemon on {ssh.host} at {helper['path']}: virt-ssh-helper ignores "
            "socket=; leave out proxy= and libvirt reaches that socket with nc"
        )
    if helper is not None:
        return (
            f"no libvirt daemon on {ssh.host} at {helper['path']}: start it there (e.g. "
            "`sudo systemctl start libvirtd`), or name its socket with ?socket=PATH"
        )
    netcat = ssh.query.get("netcat", ["nc"])[0]
    if re.search(rf"\b{re.escape(netcat)}: (not found|command not found)", ssh.said):
        return (
            f"{ssh.host} has no `{netcat}` to reach the daemon's socket: install "
            "netcat-openbsd there, or leave out ?socket= so that libvirt's virt-ssh-helper "
            "finds the daemon"
        )
    if re.match(rf"{re.escape(netcat)}: ", ssh.last):
        socket = ssh.query.get("socket", ["the socket"])[0]
        return f"no libvirt daemon listens at {socket} on {ssh.host} ({ssh.last}): start it there"
    return None


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
