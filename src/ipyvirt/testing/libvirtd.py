"""A real libvirtd for tests and demos: started by hand with a config in a dir of its own.

As root on Debian (package libvirt-daemon). ``LIBVIRT_DRIVER_DIR`` points at a dir of our own
so that only the drivers built into the daemon load (among them the test driver), needing no
system users, D-Bus or /etc changes. Clients reach its test driver as
``test+unix:///default?socket=<dir>/libvirt-sock``.

With ``qemu=True`` that dir also holds a link to the QEMU driver and, where installed, to
the secret driver (package libvirt-daemon-driver-secret: the QEMU driver's connections get
real secrets and their events; the test driver keeps its none; secrets live in
/etc/libvirt/secrets unless ephemeral, the driver's lock in /run/libvirt/secrets), and to no
other loadable driver (the network, nodedev and storage drivers fail here without
dnsmasq, udev, D-Bus); the same daemon serves
``qemu+unix:///system?socket=<dir>/libvirt-sock``. The machine's privileged QEMU driver is
one per machine (see :mod:`ipyvirt.testing.qemu`), and needs QEMU, libvirt's accounts and
three lines in /etc/libvirt/qemu.conf.

With ``sasl=(user, passphrase)`` both sockets ask for that user name and passphrase
(``libvirt.openAuth`` with ``VIR_CRED_AUTHNAME`` and ``VIR_CRED_PASSPHRASE``), by SCRAM-SHA-256
against a sasldb in that dir. Cyrus SASL reads the daemon's ``libvirt.conf`` from
``$SASL_CONF_PATH``, which we set for it: /etc/sasl2 is left alone. It needs sasl2-bin (for
saslpasswd2) and libsasl2-modules.

With ``tls=DIR`` it also listens with TLS on a free port of 127.0.0.1 (:attr:`Libvirtd.tls_port`),
with the certificates in DIR (``cacert.pem``, ``servercert.pem``, ``serverkey.pem``: what
:class:`ipyvirt.testing.pki.Pki` makes in its ``server`` dir), and asks each client for a
certificate that CA signed. Clients reach it as ``test+tls://127.0.0.1:PORT/default?pkipath=``
a client dir (:meth:`Libvirtd.tls_uri`).

This module changes nothing on the machine outside a daemon's dir: when something is missing,
:meth:`Libvirtd.start` says in one line what, and that ``scripts/prepare-host`` in ipyvirt's
source tree prepares a host (see :mod:`ipyvirt.testing.host`).

While ``$IPYVIRT_LIBVIRTD_PIDS`` names a directory, each daemon started leaves a file there
named by its pid, holding its config's path, until it is stopped: a test runner can stop what
its own run left behind, and nothing else (``scripts/test`` does).

From a shell, a detached daemon for demos (``scripts/libvirt-daemon`` wraps this)::

    python -m ipyvirt.testing.libvirtd start [--qemu] [--dir DIR]
    python -m ipyvirt.testing.libvirtd stop [--dir DIR]
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ipyvirt.testing.host import PREPARE, qemu_needs, sasl_needs
from ipyvirt.testing.procfs import argv, exited
from ipyvirt.testing.qemu import (
    QEMU_DRIVER,
    QEMU_STATE_DIR,
    SECRET_DRIVER,
    driver_path,
    guest_pids,
    kill_guests,
    lock_holder,
    minimal_domain_xml,
    on_one_cpu,
    virsh,
)

__all__ = ["PIDS_ENV", "Libvirtd", "LibvirtdUnavailable", "minimal_domain_xml"]

#: names a directory for the pid files of the daemons started (see the module's docstring)
PIDS_ENV = "IPYVIRT_LIBVIRTD_PIDS"
# SCRAM: the passphrase never crosses the socket (unlike PLAIN, which libvirt allows on a
# UNIX socket), and it is what libvirt recommends for passwords; DIGEST-MD5 is deprecated
# (RFC 6331). It needs no security layer: libvirt asks for none on a UNIX socket.
SASL_MECHANISM = "scram-sha-256"
#: what ``Libvirtd(tls=DIR)`` reads in DIR (libvirt's names)
TLS_FILES = ("cacert.pem", "servercert.pem", "serverkey.pem")


class LibvirtdUnavailable(RuntimeError):
    pass


class Libvirtd:
    """A libvirtd of our own: its config, socket, log and pid file live in ``dir``.

    Without *dir* a temporary one is made, and :meth:`cleanup` removes it; a given *dir* is
    kept (removed only if this object created it).
    """

    def __init__(
        self,
        keepalive_interval: int = 5,
        keepalive_count: int = 5,
        *,
        qemu: bool = False,
        dir: str | Path | None = None,
        sasl: tuple[str, str] | None = None,
        tls: str | Path | None = None,
    ) -> None:
        if dir is None:
            self.dir = Path(tempfile.mkdtemp(prefix="ipyvirt-libvirtd-"))
            self._owns_dir = True
        else:
            self.dir = Path(dir).absolute()
            self._owns_dir = not self.dir.exists()
            self.dir.mkdir(parents=True, exist_ok=True)
        self.socket = self.dir / "libvirt-sock"
        self.log = self.dir / "libvirtd.log"
        self.conf = self.dir / "libvirtd.conf"
        self.pid_file = self.dir / "libvirtd.pid"
        self.keepalive = (keepalive_interval, keepalive_count)
        self.qemu = qemu
        # (user, passphrase): kept out of every file but the sasldb, and off command lines
        self._sasl = sasl
        #: Cyrus SASL's config dir for the daemon (its libvirt.conf and sasldb), with *sasl*
        self.sasl_dir = self.dir / "sasl2"
        #: the one file that holds the passphrase (SCRAM's server derives its secret from it)
        self.sasldb = self.sasl_dir / "passwd.db"
        #: the dir of the CA's, the server's certificate and key, with *tls*
        self.tls = Path(tls).absolute() if tls is not None else None
        #: the TCP port it listens on with TLS (chosen at each start), with *tls*
        self.tls_port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        #: the daemon's pid while it runs (also for one found by :meth:`attach`)
        self.pid: int | None = None
        # set once the QEMU driver answered: only then are the guests on this machine ours
        self._qemu_ready = False
        # guests seen before the daemon died, killed by stop() unless libvirt destroyed them
        self._guests: list[int] = []

    @classmethod
    def attach(cls, dir: str | Path) -> Libvirtd | None:
        """The daemon running from *dir* (started by another process), or None."""
        dir = Path(dir).absolute()
        if not (dir / "libvirtd.conf").exists():
            return None
        daemon = cls(dir=dir, qemu=(dir / "drivers" / QEMU_DRIVER).is_symlink())
        try:
            daemon.pid = int(daemon.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        # a killed daemon leaves its pid file, and the pid may be reused since
        if str(daemon.conf) not in argv(daemon.pid) or not daemon.running():
            return None
        daemon._qemu_ready = daemon.qemu
        return daemon

    @property
    def test_uri(self) -> str:
        return f"test+unix:///default?socket={self.socket}"

    def tls_uri(self, pkipath: str | Path, driver: str = "test", path: str = "/default") -> str:
        """``DRIVER+tls://127.0.0.1:PORT/PATH?pkipath=...``: with a client's certificates."""
        if self.tls is None:
            raise LibvirtdUnavailable(
                "this libvirtd does not listen with TLS: use Libvirtd(tls=...)"
            )
        return f"{driver}+tls://127.0.0.1:{self.tls_port}{path}?pkipath={pkipath}"

    @property
    def qemu_uri(self) -> str:
        if not self.qemu:
            raise LibvirtdUnavailable("this libvirtd has no QEMU driver: use Libvirtd(qemu=True)")
        return f"qemu+unix:///system?socket={self.socket}"

    def start(self, timeout: float | None = None, *, detach: bool = False) -> Libvirtd:
        """Start the daemon and wait until it serves; *detach* lets it outlive this process.

        *timeout* defaults to 20 s, 90 s with QEMU (its first start probes QEMU for ~10 s).
        """
        binary = shutil.which("libvirtd") or "/usr/sbin/libvirtd"
        self._check_host(binary)
        self._prepare_dir()
        command = [binary, "--config", str(self.conf), "--pid-file", str(self.pid_file)]
        if self.tls is not None:
            command.append("--listen")
        if self.qemu:
            command = on_one_cpu(command)
        self._spawn(command + ["--daemon"] * detach)
        deadline = time.monotonic() + (timeout or (90.0 if self.qemu else 20.0))
        if detach:
            self._adopt_detached(deadline)
        self._record_pid()
        self._wait_for_socket(deadline)
        if self.tls is not None:
            self._wait_for_port(deadline)
        if self.qemu:
            self._wait_for_qemu_driver(deadline)
        return self

    def _check_host(self, binary: str) -> None:
        """Raise, in one line, what the machine lacks for this daemon: it installs nothing."""
        if not os.path.exists(binary):
            raise LibvirtdUnavailable(
                "libvirtd is not installed: apt-get install --no-install-recommends "
                "libvirt-daemon (ipyvirt's scripts/setup does, as root)"
            )
        if os.geteuid() != 0:
            raise LibvirtdUnavailable("the test libvirtd is started as root (it is here in CI)")
        needs = qemu_needs() if self.qemu else []
        if needs:
            raise LibvirtdUnavailable(
                f"Libvirtd(qemu=True) needs {'; '.join(needs)}: {PREPARE} --qemu in ipyvirt's "
                "source tree installs and sets them (run it as root)"
            )
        packages = " ".join(sasl_needs()) if self._sasl is not None else ""
        if packages:
            raise LibvirtdUnavailable(
                f"Libvirtd(sasl=...) needs packages {packages}: apt-get install "
                f"--no-install-recommends {packages}, or run {PREPARE} --sasl (as root) in "
                "ipyvirt's source tree"
            )

    def _prepare_dir(self) -> None:
        if len(str(self.socket)) > 107:
            raise LibvirtdUnavailable(
                f"{self.dir} is too long for a UNIX socket: pick a shorter dir"
            )
        self.dir.mkdir(parents=True, exist_ok=True)  # cleanup() may have removed it
        running = Libvirtd.attach(self.dir)
        if running is not None:
            raise LibvirtdUnavailable(
                f"a libvirtd already runs from {self.dir}: stop it first "
                f"(python -m ipyvirt.testing.libvirtd stop --dir {self.dir})"
            )
        if self.qemu and lock_holder() is not None:
            raise _qemu_taken(lock_holder())
        # a killed daemon leaves its sockets; a stale one would pass for the new daemon's
        for stale in self.dir.glob("libvirt*-sock*"):
            stale.unlink()
        drivers = self.dir / "drivers"
        shutil.rmtree(drivers, ignore_errors=True)
        drivers.mkdir()
        if self.qemu:
            driver = driver_path()
            assert driver is not None, "_check_host() found it"
            (drivers / QEMU_DRIVER).symlink_to(driver)
            secrets = driver_path(SECRET_DRIVER)
            if secrets is not None:  # the QEMU driver runs without it, with no secrets
                (drivers / SECRET_DRIVER).symlink_to(secrets)
        auth = "none" if self._sasl is None else "sasl"
        self.conf.write_text(
            f'unix_sock_dir = "{self.dir}"\n'
            f'auth_unix_ro = "{auth}"\n'
            f'auth_unix_rw = "{auth}"\n'
            f'log_outputs = "3:file:{self.log}"\n'
            f"keepalive_interval = {self.keepalive[0]}\n"
            f"keepalive_count = {self.keepalive[1]}\n" + self._tls_conf()
        )
        self._prepare_sasl()

    def _tls_conf(self) -> str:
        if self.tls is None:
            return ""
        missing = [f for f in TLS_FILES if not (self.tls / f).is_file()]
        if missing:
            raise LibvirtdUnavailable(
                f"Libvirtd(tls={str(self.tls)!r}) lacks {', '.join(missing)}: make them with "
                "ipyvirt.testing.pki.Pki().make() (its .server dir)"
            )
        self.tls_port = _free_port()
        return (
            "listen_tls = 1\nlisten_tcp = 0\n"
            'listen_addr = "127.0.0.1"\n'
            f'tls_port = "{self.tls_port}"\n'
            f'ca_file = "{self.tls / "cacert.pem"}"\n'
            f'cert_file = "{self.tls / "servercert.pem"}"\n'
            f'key_file = "{self.tls / "serverkey.pem"}"\n'
            'auth_tls = "none"\n'
        )

    def _prepare_sasl(self) -> None:
        """The daemon's SASL config and sasldb, made afresh: one user, *sasl*'s."""
        shutil.rmtree(self.sasl_dir, ignore_errors=True)
        if self._sasl is None:
            return
        user, passphrase = self._sasl
        self.sasl_dir.mkdir(mode=0o700)
        # "libvirt" is the service name libvirtd gives sasl_server_init(): libvirt.conf
        (self.sasl_dir / "libvirt.conf").write_text(
            f"mech_list: {SASL_MECHANISM}\nsasldb_path: {self.sasldb}\n"
        )
        # -p reads the passphrase from stdin (never in argv, where ps shows it). The sasldb
        # keeps it as a plain userPassword, which the SCRAM plugin derives its secret from: with
        # -n (no userPassword) Debian's cyrus-sasl 2.1.28 stores nothing at all.
        command = ["saslpasswd2", "-p", "-c", "-a", "libvirt", "-f", str(self.sasldb), user]
        done = subprocess.run(command, input=passphrase, capture_output=True, text=True)
        if done.returncode != 0 or not self.sasldb.exists():
            why = (done.stderr.strip() or "no output").splitlines()[-1]
            raise LibvirtdUnavailable(f"saslpasswd2 could not add {user!r} ({why})")

    def _spawn(self, command: list[str]) -> None:
        env = dict(os.environ, LIBVIRT_DRIVER_DIR=str(self.dir / "drivers"))
        if self._sasl is not None:
            # Cyrus SASL honours it in a process that is not setuid (libvirtd sets no
            # SASL_CB_GETCONFPATH of its own); without it, it reads /etc/sasl2/libvirt.conf
            env["SASL_CONF_PATH"] = str(self.sasl_dir)
        with open(self.dir / "stderr", "wb") as stderr:
            self.proc = subprocess.Popen(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,
            )
        self.pid = self.proc.pid

    def _adopt_detached(self, deadline: float) -> None:
        # libvirtd --daemon forks; the first process exits once the daemon has its pid file
        assert self.proc is not None, "_spawn() ran"
        try:
            code = self.proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.proc = None
        self.pid = int(self.pid_file.read_text().strip()) if self.pid_file.exists() else None
        if code != 0 or not self.running():
            raise self._failure("libvirtd exited")

    def _record_pid(self) -> None:
        where = os.environ.get(PIDS_ENV)
        if where and self.pid is not None:
            Path(where).mkdir(parents=True, exist_ok=True)
            # the config's path tells this daemon from a later process given the same pid
            (Path(where) / str(self.pid)).write_text(f"{self.conf}\n")

    def _forget_pid(self) -> None:
        where = os.environ.get(PIDS_ENV)
        if where and self.pid is not None and not self.running():
            (Path(where) / str(self.pid)).unlink(missing_ok=True)

    def _wait_for_socket(self, deadline: float) -> None:
        # libvirtd binds its socket (the file appears) before it listens on it, once its
        # drivers are up: a client in between is refused. Wait until a connection is taken.
        while not _accepts(self.socket):
            if not self.running():
                raise self._failure("libvirtd exited")
            if time.monotonic() > deadline:
                self.stop()
                raise self._failure("libvirtd did not listen on its socket before the timeout")
            time.sleep(0.02)

    def _wait_for_port(self, deadline: float) -> None:
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.tls_port), timeout=1):
                    return
            except OSError:
                pass
            if not self.running():
                raise self._failure("libvirtd exited")
            if time.monotonic() > deadline:
                self.stop()
                raise self._failure(f"libvirtd did not listen on port {self.tls_port}")
            time.sleep(0.02)

    def _wait_for_qemu_driver(self, deadline: float) -> None:
        # QEMU's capabilities are probed on first use (~10 s, then cached in
        # /var/cache/libvirt/qemu): ask for them now, so that no guest start waits for it
        try:
            answer = virsh(
                self.qemu_uri, "capabilities", timeout=max(1.0, deadline - time.monotonic())
            )
        except subprocess.TimeoutExpired:
            answer = None
        if answer is None or answer.returncode != 0:
            why = " ".join(answer.stderr.split()) if answer else "no answer before the timeout"
            self.stop()
            raise self._failure(f"the QEMU driver did not start ({why})")
        self._qemu_ready = True

    def running(self) -> bool:
        """True until the daemon has exited (a zombie has exited: it holds no locks)."""
        if self.proc is not None:
            return self.proc.poll() is None
        return self.pid is not None and not exited(self.pid)

    def _failure(self, what: str) -> LibvirtdUnavailable:
        log = self.diagnostics()
        if f"{QEMU_STATE_DIR}/driver.pid" in log:
            return _qemu_taken(lock_holder())
        return LibvirtdUnavailable(f"{what}: {log}")

    def diagnostics(self) -> str:
        parts = []
        for f in (self.dir / "stderr", self.log):
            if f.exists():
                lines = f.read_text(errors="replace").splitlines()
                parts += [line for line in lines if line.strip()][-5:]
        return " | ".join(parts) or "no output"

    def kill(self) -> None:
        """SIGKILL, as a crash would: the socket file and QEMU guests stay behind.

        :meth:`stop` (or :meth:`cleanup`) then ends the guests, as libvirt would after a
        crash: it starts the daemon again, which takes them back, and destroys them.
        """
        if self.running():
            if self._qemu_ready:
                self._guests = guest_pids()
            self._signal(signal.SIGKILL, 10)
            self._forget_pid()

    def stop(self) -> None:
        """Destroy running QEMU guests (libvirtd leaves them running), then stop the daemon."""
        if not self.running() and any(pid in guest_pids() for pid in self._guests):
            self._take_back_guests()
        if self.running():
            if self._qemu_ready:
                self._guests = guest_pids()
                self._destroy_guests()
            if not self._signal(signal.SIGTERM, 10):
                self._signal(signal.SIGKILL, 10)
        self._forget_pid()
        self.proc = None
        self.pid = None
        self._qemu_ready = False
        if self._guests:
            kill_guests(self._guests)
            self._guests = []

    def _take_back_guests(self) -> None:
        # Killing them would leave libvirt's state on them behind (/run/libvirt/qemu,
        # /var/lib/libvirt/qemu), for the next daemon to act on: a restarted daemon takes its
        # guests back, and destroys them cleanly. Those it cannot reach are killed after.
        try:
            self.start()
        except LibvirtdUnavailable:
            pass

    def _destroy_guests(self) -> None:
        # through libvirt, so that it tidies its state; guests it misses are killed after
        try:
            listed = virsh(self.qemu_uri, "list", "--uuid", timeout=10)
            uuids = listed.stdout.split()
            if uuids:
                virsh(self.qemu_uri, "; ".join(f"destroy {u}" for u in uuids), timeout=60)
        except subprocess.TimeoutExpired:
            pass

    def _signal(self, sig: signal.Signals, timeout: float) -> bool:
        """Send *sig* and wait up to *timeout* s for the daemon to go; True if it went."""
        assert self.pid is not None, "only called while running()"
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while self.running():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def cleanup(self) -> None:
        self.stop()
        if self._owns_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Libvirtd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def _accepts(path: Path) -> bool:
    """A UNIX socket at *path* takes a connection (closed again at once)."""
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(str(path))
        except OSError:  # no file yet, or nobody listening on it yet
            return False
    return True


def _free_port() -> int:
    # another process may take it before the daemon binds it: start() then fails, saying so
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _qemu_taken(pid: int | None) -> LibvirtdUnavailable:
    holder = f"pid {pid}: {' '.join(argv(pid))}" if pid else "it has gone since"
    return LibvirtdUnavailable(
        f"another libvirtd runs the QEMU driver ({holder}) and a machine has one: stop it "
        "first (python -m ipyvirt.testing.libvirtd stop [--dir DIR])"
    )


if __name__ == "__main__":
    # the command line lives in libvirtd_cli (it imports this module anew, as a library)
    from ipyvirt.testing.libvirtd_cli import main

    sys.exit(main())
