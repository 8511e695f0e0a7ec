"""A real sshd for tests: ``qemu+ssh://`` and ``test+ssh://`` to a :class:`Libvirtd` of ours.

It listens on a free port of 127.0.0.1, with a host key, config, pid file and log of its own
in a dir of its own, and lets in the key pair it makes (:attr:`Sshd.client_key`) as the user
running it (root: the daemons are root's). libvirt's ``ssh`` transport runs the system ``ssh``,
which logs in and runs ``nc -U <socket>`` there to reach the daemon's socket (``socket=`` on
the URI; ``virt-ssh-helper`` knows only the system's sockets, and libvirt 9.0 runs ``nc``
instead when a socket is given and no ``proxy=``).

ssh reads the known hosts of the account (``~`` is the passwd entry's home, not ``$HOME``) and
libvirt's ``ssh`` transport has no ``known_hosts=`` parameter. So that nothing outside its dir
is read or written, :attr:`Sshd.ssh` is a two-line wrapper that runs the system ssh with a
config of ours (``-F``: its known hosts file, no agent, no default keys), given to libvirt as
``command=``. :meth:`Sshd.uri` puts it, the key and the socket on the URI.

It needs openssh-server, openssh-client, netcat-openbsd and the directory /run/sshd (which
sshd insists on; the system's service makes it at start): when one is missing,
:meth:`Sshd.start` says in one line what, and that ``scripts/prepare-host --ssh`` in
ipyvirt's source tree prepares a host. It changes nothing outside its dir.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from ipyvirt.testing.host import PREPARE, ssh_needs

__all__ = ["Sshd", "SshdUnavailable"]

SSHD = "/usr/sbin/sshd"
HOST = "127.0.0.1"


class SshdUnavailable(RuntimeError):
    pass


class Sshd:
    """An sshd of our own on ``127.0.0.1:<port>``; its files live in ``dir``.

    Without *dir* a temporary one is made, and :meth:`cleanup` removes it. The host key is
    *not* known to :attr:`ssh` until :meth:`accept_host_key`: a first connection fails as
    it would to a new host. sshd stops when the thread that started it ends (Linux's parent
    death signal): start it from one that outlives it, such as the main thread.
    """

    def __init__(self, dir: str | Path | None = None) -> None:
        if dir is None:
            self.dir = Path(tempfile.mkdtemp(prefix="ipyvirt-sshd-"))
            self._owns_dir = True
        else:
            self.dir = Path(dir).absolute()
            self._owns_dir = not self.dir.exists()
            self.dir.mkdir(parents=True, exist_ok=True)
        self.host_key = self.dir / "host_key"
        #: the key sshd lets in (as the user running it)
        self.client_key = self.dir / "client_key"
        #: a key sshd does not know: with it, sshd asks for a password next
        self.stranger_key = self.dir / "stranger_key"
        self.authorized_keys = self.dir / "authorized_keys"
        #: the known hosts file of :attr:`ssh` (empty until :meth:`accept_host_key`)
        self.known_hosts = self.dir / "known_hosts"
        self.ssh_config = self.dir / "ssh_config"
        #: the system ssh with our config: libvirt's ``command=``
        self.ssh = self.dir / "ssh"
        self.log = self.dir / "sshd.log"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def user(self) -> str:
        """The account ssh logs in as: the one running sshd (and the tests)."""
        return pwd.getpwuid(os.geteuid()).pw_name

    def uri(
        self, socket_path: str | Path, driver: str = "test", path: str = "/default", **params: str
    ) -> str:
        """``DRIVER+ssh://USER@127.0.0.1:PORT/PATH`` reaching the daemon at *socket_path*.

        *params* add to (or replace) ``socket``, ``keyfile`` (:attr:`client_key`) and
        ``command`` (:attr:`ssh`).
        """
        query = {"socket": str(socket_path), "keyfile": str(self.client_key)}
        query["command"] = str(self.ssh)
        query.update(params)
        encoded = "&".join(f"{k}={quote(v, safe='/')}" for k, v in query.items())
        return f"{driver}+ssh://{self.user}@{HOST}:{self.port}{path}?{encoded}"

    def start(self, timeout: float = 20.0) -> Sshd:
        """Make the keys and config, start sshd, and wait until it accepts connections.

        The first start picks a free port; a later one (after :meth:`stop` or :meth:`kill`)
        listens on the same port again, so that URIs made before still reach it.
        """
        self._check_host()
        self._prepare_dir()
        deadline = time.monotonic() + timeout
        again = self.port != 0
        for _ in range(1 if again else 5):  # another process may take the port first
            self.port = self.port if again else _free_port()
            self._write_sshd_config()
            self._spawn()
            if self._wait_until_listening(deadline):
                return self
            if "Address already in use" not in self.diagnostics():
                break
        why = self.diagnostics()
        self.stop()
        raise SshdUnavailable(f"sshd did not start: {why}")

    def _check_host(self) -> None:
        needs = ssh_needs()
        if needs:
            raise SshdUnavailable(
                f"Sshd needs {'; '.join(needs)}: {PREPARE} --ssh in ipyvirt's source tree "
                "installs and makes them (run it as root)"
            )

    def _prepare_dir(self) -> None:
        self.dir.chmod(0o700)  # sshd refuses keys others can read; ssh refuses such configs
        for key in (self.host_key, self.client_key, self.stranger_key):
            if not key.exists():
                command = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", key.name]
                _run([*command, "-f", str(key)])
        self.authorized_keys.write_text(self.client_key.with_suffix(".pub").read_text())
        self.known_hosts.touch()
        self.ssh_config.write_text(
            f"UserKnownHostsFile {self.known_hosts}\n"
            "GlobalKnownHostsFile /dev/null\n"
            # only the key on the URI (keyfile=): no agent, no ~/.ssh keys of the account
            "IdentitiesOnly yes\n"
            "IdentityAgent none\n"
            "HashKnownHosts no\n"
        )
        ssh = shutil.which("ssh") or "/usr/bin/ssh"
        self.ssh.write_text(f'#!/bin/sh\nexec {ssh} -F {self.ssh_config} "$@"\n')
        self.ssh.chmod(0o700)

    def _write_sshd_config(self) -> None:
        (self.dir / "sshd_config").write_text(
            f"ListenAddress {HOST}\n"
            f"Port {self.port}\n"
            f"HostKey {self.host_key}\n"
            f"PidFile {self.dir / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {self.authorized_keys}\n"
            "PermitRootLogin yes\n"
            # offered, as many hosts do, so that a key it does not know meets a password
            # prompt; no password can succeed (no PAM, and the account's own is not ours)
            "PasswordAuthentication yes\n"
            "KbdInteractiveAuthentication yes\n"
            "UsePAM no\n"
            # its files are in a dir of ours, not in the account's home
            "StrictModes no\n"
            "PrintMotd no\n"
            "LogLevel VERBOSE\n"
        )

    def _spawn(self) -> None:
        command = [SSHD, "-D", "-e", "-f", str(self.dir / "sshd_config")]
        # SIGTERM when the thread that started it ends (a test run killed, or crashed): no
        # sshd outlives its tests. setpriv (util-linux, essential on Debian) sets it and
        # execs sshd; Popen's preexec_fn could, but is unsafe beside threads (ipyvirt's).
        setpriv = shutil.which("setpriv")
        if setpriv is not None:
            command = [setpriv, "--pdeathsig", "TERM", "--", *command]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )

    def _wait_until_listening(self, deadline: float) -> bool:
        while time.monotonic() < deadline:
            if not self.running():
                return False
            try:
                with socket.create_connection((HOST, self.port), timeout=1):
                    return True
            except OSError:
                time.sleep(0.02)
        return False

    def accept_host_key(self) -> None:
        """Trust this sshd's host key, as answering ssh's question with "yes" would."""
        key = self.host_key.with_suffix(".pub").read_text().split()
        self.known_hosts.write_text(f"[{HOST}]:{self.port} {key[0]} {key[1]}\n")

    def forget_host_key(self) -> None:
        self.known_hosts.write_text("")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def diagnostics(self) -> str:
        if not self.log.exists():
            return "no output"
        lines = [line for line in self.log.read_text(errors="replace").splitlines() if line]
        return " | ".join(lines[-5:]) or "no output"

    def kill(self) -> None:
        """SIGKILL sshd and every connection it serves, as a host that goes down would: each
        client's ssh sees its connection end."""
        if self.proc is None:
            return
        sessions = _children(self.proc.pid)  # one per connection
        self.proc.kill()
        self.proc.wait()
        self.proc = None
        for pid in sessions:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def cleanup(self) -> None:
        self.stop()
        if self._owns_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Sshd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def _children(pid: int) -> list[int]:
    """The processes whose parent is *pid* (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid ...": comm may hold spaces and parentheses
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        why = (done.stderr.strip() or "no output").splitlines()[-1]
        raise SshdUnavailable(f"{command[0]} failed ({why})")
