"""A real libvirtd for tests and demos: started by hand with a config in a dir of its own.

As root on Debian (package libvirt-daemon). ``LIBVIRT_DRIVER_DIR`` points at a dir of our own
so that only the drivers built into the daemon load (among them the test driver), needing no
system users, D-Bus or /etc changes. Clients reach its test driver as
``test+unix:///default?socket=<dir>/libvirt-sock``.

With ``qemu=True`` that dir also holds a link to the QEMU driver (and to no other loadable
driver: the network, nodedev and storage drivers fail here without dnsmasq, udev, D-Bus), and
the same daemon serves ``qemu+unix:///system?socket=<dir>/libvirt-sock``. A privileged QEMU
driver has fixed homes (/etc/libvirt/qemu.conf, /run/libvirt/qemu, /var/lib/libvirt/qemu,
/var/cache/libvirt/qemu) and takes a machine-wide lock: one such daemon per machine at a time.
Starting one installs qemu-system-x86, adds the accounts libvirt-daemon-system would add and
sets three lines in /etc/libvirt/qemu.conf (see :func:`prepare_qemu_host`).

With ``sasl=(user, passphrase)`` both sockets ask for that user name and passphrase
(``libvirt.openAuth`` with ``VIR_CRED_AUTHNAME`` and ``VIR_CRED_PASSPHRASE``), by SCRAM-SHA-256
against a sasldb in that dir. Cyrus SASL reads the daemon's ``libvirt.conf`` from
``$SASL_CONF_PATH``, which we set for it: /etc/sasl2 is left alone. Starting one installs
sasl2-bin (for saslpasswd2) and libsasl2-modules if missing (see :func:`prepare_sasl_host`).

From a shell, a detached daemon for demos (``scripts/libvirt-daemon`` wraps this)::

    python -m ipyvirt.testing.libvirtd start [--qemu] [--dir DIR]
    python -m ipyvirt.testing.libvirtd stop [--dir DIR]
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from xml.sax.saxutils import escape

__all__ = [
    "Libvirtd",
    "LibvirtdUnavailable",
    "minimal_domain_xml",
    "prepare_qemu_host",
    "prepare_sasl_host",
]

QEMU_CONF = Path("/etc/libvirt/qemu.conf")
# A root daemon's guests run as root (no /dev/kvm or file ownership to arrange), and write
# their stdio to plain files: the default needs virtlogd, and start-up then takes 4.4 s, not
# 0.35 s.
QEMU_SETTINGS = {"user": '"root"', "group": '"root"', "stdio_handler": '"file"'}
# package: the program that shows it is installed (virsh destroys guests, waits for QEMU)
QEMU_PACKAGES = {"qemu-system-x86": "qemu-system-x86_64", "libvirt-clients": "virsh"}
QEMU_DRIVER = "libvirt_driver_qemu.so"
# Where libvirt's QEMU driver keeps its lock and each running guest's pid file and status.
QEMU_STATE_DIR = Path("/run/libvirt/qemu")
# libvirt-daemon-system's ids for libvirt-qemu, used when free (as its postinst does).
LIBVIRT_QEMU_ID = 64055
CLI_DIR = Path("/tmp/ipyvirt-daemon")
# SCRAM: the passphrase never crosses the socket (unlike PLAIN, which libvirt allows on a
# UNIX socket), and it is what libvirt recommends for passwords; DIGEST-MD5 is deprecated
# (RFC 6331). It needs no security layer: libvirt asks for none on a UNIX socket.
SASL_MECHANISM = "scram-sha-256"
SASL_PLUGIN = "libscram.so"


class LibvirtdUnavailable(RuntimeError):
    pass


def minimal_domain_xml(name: str) -> str:
    """A QEMU guest that starts here in ~0.35 s: TCG (no KVM), 64 MiB, no disk, no display.

    It boots into SeaBIOS, finds nothing to boot and keeps running until destroyed. There is
    no ``<graphics>`` element at all (libvirt rejects ``type='none'``).
    """
    return (
        "<domain type='qemu'>"
        f"<name>{escape(name)}</name>"
        "<memory unit='MiB'>64</memory>"
        "<vcpu>1</vcpu>"
        "<os><type arch='x86_64'>hvm</type></os>"
        "<devices><memballoon model='none'/></devices>"
        "</domain>"
    )


def prepare_qemu_host() -> None:
    """As root: QEMU installed, libvirt's accounts present, /etc/libvirt/qemu.conf set."""
    missing = _missing_qemu_packages()
    if os.geteuid() != 0 and missing:
        packages = " ".join(missing)
        raise LibvirtdUnavailable(
            f"Libvirtd(qemu=True) needs {packages} and root: run it as root, which installs "
            f"them, or apt-get install --no-install-recommends {packages} and run it as root"
        )
    if os.geteuid() != 0:
        raise LibvirtdUnavailable(
            "Libvirtd(qemu=True) runs as root (it adds the libvirt-qemu user and sets "
            f"{QEMU_CONF}): run it as root"
        )
    if missing:
        _apt_install(missing)
    _ensure_qemu_accounts()
    set_conf(QEMU_CONF, QEMU_SETTINGS)


def prepare_sasl_host() -> None:
    """saslpasswd2 and Cyrus SASL's SCRAM plugin installed (as root), or a line saying how."""
    missing = _missing_sasl_packages()
    if missing and os.geteuid() != 0:
        packages = " ".join(missing)
        raise LibvirtdUnavailable(
            f"Libvirtd(sasl=...) needs {packages}: apt-get install --no-install-recommends "
            f"{packages}, or run it as root, which installs them"
        )
    if missing:
        _apt_install(missing)


def _missing_sasl_packages() -> list[str]:
    missing = [] if shutil.which("saslpasswd2") else ["sasl2-bin"]
    if not glob.glob(f"/usr/lib/*/sasl2/{SASL_PLUGIN}*"):
        missing.append("libsasl2-modules")
    return missing


def _missing_qemu_packages() -> list[str]:
    missing = [pkg for pkg, binary in QEMU_PACKAGES.items() if not shutil.which(binary)]
    if _qemu_driver_path() is None:
        missing.append("libvirt-daemon-driver-qemu")
    return missing


def _qemu_driver_path() -> Path | None:
    found = sorted(glob.glob(f"/usr/lib/*/libvirt/connection-driver/{QEMU_DRIVER}"))
    return Path(found[0]) if found else None


def _apt_install(packages: list[str]) -> None:
    if not shutil.which("apt-get"):
        raise LibvirtdUnavailable(f"install {' '.join(packages)} (no apt-get on this machine)")
    command = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages]
    # Fresh images ship without package lists; stale lists name versions the mirror dropped.
    if not glob.glob("/var/lib/apt/lists/*_Packages*"):
        _run(["apt-get", "update", "-qq"])
    if _run(command, check=False).returncode != 0:
        _run(["apt-get", "update", "-qq"])
        _run(command)


def _run(command: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        raise LibvirtdUnavailable(f"{' '.join(command)} failed ({last}): run it by hand to see why")
    return done


def _ensure_qemu_accounts() -> None:
    """The accounts libvirt-daemon-system's postinst adds; the QEMU driver needs them to load."""
    if not _exists("group", "kvm"):
        _run(["groupadd", "--system", "kvm"])
    if not _exists("passwd", "libvirt-qemu"):
        uid = [] if _exists("passwd", str(LIBVIRT_QEMU_ID)) else ["--uid", str(LIBVIRT_QEMU_ID)]
        home = ["--home-dir", "/var/lib/libvirt", "--no-create-home"]
        login = ["--shell", "/usr/sbin/nologin", "--comment", "Libvirt Qemu"]
        _run(["useradd", "--system", "--gid", "kvm", *home, *login, *uid, "libvirt-qemu"])
    if not _exists("group", "libvirt-qemu"):
        gid = [] if _exists("group", str(LIBVIRT_QEMU_ID)) else ["--gid", str(LIBVIRT_QEMU_ID)]
        _run(["groupadd", "--system", *gid, "libvirt-qemu"])
        _run(["usermod", "--append", "--groups", "libvirt-qemu", "libvirt-qemu"])


def _exists(database: str, key: str) -> bool:
    return subprocess.run(["getent", database, key], capture_output=True).returncode == 0


def set_conf(path: Path, settings: dict[str, str]) -> bool:
    """Give libvirt config *path* these ``key = value`` lines; True if it had to change it.

    Every other line stays. Before the first change the file is copied to ``<path>.orig``.
    """
    old = path.read_text() if path.exists() else ""
    new = edit_conf(old, settings)
    if new == old:
        return False
    backup = path.with_name(path.name + ".orig")
    if path.exists() and not backup.exists():
        shutil.copy2(path, backup)
    path.parent.mkdir(parents=True, exist_ok=True)
    # 0600 like libvirt-daemon-system's copy: it may hold passwords (VNC, SPICE)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(new)
    return True


def edit_conf(text: str, settings: dict[str, str]) -> str:
    """*text* with each key set to its value: an active line is replaced, else one appended."""
    lines = text.splitlines()
    todo = dict(settings)
    for i, line in enumerate(lines):
        key = line.split("=", 1)[0].strip()
        if "=" in line and key in todo and not line.lstrip().startswith("#"):
            lines[i] = f"{key} = {todo.pop(key)}"
    if todo:
        lines.append("# set by ipyvirt.testing.libvirtd: guests as root, stdio to files")
        lines += [f"{key} = {value}" for key, value in todo.items()]
    return "\n".join(lines) + "\n"


def qemu_guest_pids() -> list[int]:
    """The QEMU guests of the machine's privileged QEMU driver (which writes their pid files).

    One libvirtd at a time holds that driver: while ours does, these are its guests.
    """
    pids = []
    for pid_file in QEMU_STATE_DIR.glob("*.pid"):
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            continue
        argv = _argv(pid)
        # driver.pid is the daemon's own; a stale file may name a reused pid
        if argv and Path(argv[0]).name.startswith("qemu-system"):
            pids.append(pid)
    return sorted(pids)


def _argv(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return raw.decode(errors="replace").split("\0")[:-1]


def _exited(pid: int) -> bool:
    """True once *pid* is a zombie or gone: it has let go of its locks and sockets.

    Its cmdline is no sign: it reads empty while a process exits, and just after exec.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def kill_guests(pids: Iterable[int], timeout: float = 10.0) -> None:
    """SIGKILL those of *pids* that are still QEMU guests, and wait until they are gone."""
    alive = [pid for pid in pids if pid in qemu_guest_pids()]
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while not all(_exited(pid) for pid in alive) and time.monotonic() < deadline:
        time.sleep(0.02)


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
        if str(daemon.conf) not in _argv(daemon.pid) or not daemon.running():
            return None
        daemon._qemu_ready = daemon.qemu
        return daemon

    @property
    def test_uri(self) -> str:
        return f"test+unix:///default?socket={self.socket}"

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
        if not os.path.exists(binary):
            raise LibvirtdUnavailable(
                "libvirtd is not installed: run scripts/setup (as root it installs "
                "libvirt-daemon), or apt-get install --no-install-recommends libvirt-daemon"
            )
        if self.qemu:
            prepare_qemu_host()
        if self._sasl is not None:
            prepare_sasl_host()
        if os.geteuid() != 0:
            raise LibvirtdUnavailable("the test libvirtd is started as root (it is here in CI)")
        self._prepare_dir()
        command = [binary, "--config", str(self.conf), "--pid-file", str(self.pid_file)]
        if self.qemu:
            command = _on_one_cpu(command)
        self._spawn(command + ["--daemon"] * detach)
        deadline = time.monotonic() + (timeout or (90.0 if self.qemu else 20.0))
        if detach:
            self._adopt_detached(deadline)
        self._wait_for_socket(deadline)
        if self.qemu:
            self._wait_for_qemu_driver(deadline)
        return self

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
        if self.qemu and _qemu_lock_holder() is not None:
            raise _qemu_taken(_qemu_lock_holder())
        # a killed daemon leaves its sockets; a stale one would pass for the new daemon's
        for stale in self.dir.glob("libvirt*-sock*"):
            stale.unlink()
        drivers = self.dir / "drivers"
        shutil.rmtree(drivers, ignore_errors=True)
        drivers.mkdir()
        if self.qemu:
            driver = _qemu_driver_path()
            assert driver is not None, "prepare_qemu_host() installed it"
            (drivers / QEMU_DRIVER).symlink_to(driver)
        auth = "none" if self._sasl is None else "sasl"
        self.conf.write_text(
            f'unix_sock_dir = "{self.dir}"\n'
            f'auth_unix_ro = "{auth}"\n'
            f'auth_unix_rw = "{auth}"\n'
            f'log_outputs = "3:file:{self.log}"\n'
            f"keepalive_interval = {self.keepalive[0]}\n"
            f"keepalive_count = {self.keepalive[1]}\n"
        )
        self._prepare_sasl()

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

    def _wait_for_socket(self, deadline: float) -> None:
        while not self.socket.exists():
            if not self.running():
                raise self._failure("libvirtd exited")
            if time.monotonic() > deadline:
                self.stop()
                raise self._failure("libvirtd made no socket before the timeout")
            time.sleep(0.02)

    def _wait_for_qemu_driver(self, deadline: float) -> None:
        # QEMU's capabilities are probed on first use (~10 s, then cached in
        # /var/cache/libvirt/qemu): ask for them now, so that no guest start waits for it
        try:
            answer = _virsh(
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
        return self.pid is not None and not _exited(self.pid)

    def _failure(self, what: str) -> LibvirtdUnavailable:
        log = self.diagnostics()
        if f"{QEMU_STATE_DIR}/driver.pid" in log:
            return _qemu_taken(_qemu_lock_holder())
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
                self._guests = qemu_guest_pids()
            self._signal(signal.SIGKILL, 10)

    def stop(self) -> None:
        """Destroy running QEMU guests (libvirtd leaves them running), then stop the daemon."""
        if not self.running() and any(pid in qemu_guest_pids() for pid in self._guests):
            self._take_back_guests()
        if self.running():
            if self._qemu_ready:
                self._guests = qemu_guest_pids()
                self._destroy_guests()
            if not self._signal(signal.SIGTERM, 10):
                self._signal(signal.SIGKILL, 10)
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
            listed = _virsh(self.qemu_uri, "list", "--uuid", timeout=10)
            uuids = listed.stdout.split()
            if uuids:
                _virsh(self.qemu_uri, "; ".join(f"destroy {u}" for u in uuids), timeout=60)
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


def _on_one_cpu(command: list[str]) -> list[str]:
    """*command* run on the lowest CPU this process may use (with taskset, if there)."""
    # On some VMs the CPUs answer CPUID differently. The QEMU driver reads CPUID once at start,
    # on whichever CPU it runs, and re-probes QEMU (~8 s) when that differs from the cached
    # probe's: half the starts were slow. One fixed CPU reads the same CPUID every time.
    taskset = shutil.which("taskset")
    if taskset is None:
        return command
    return [taskset, "--cpu-list", str(min(os.sched_getaffinity(0))), *command]


def _qemu_lock_holder() -> int | None:
    """The daemon that holds the machine's QEMU driver, if one runs."""
    try:
        pid = int((QEMU_STATE_DIR / "driver.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    # a killed daemon leaves the file behind
    return None if _exited(pid) else pid


def _qemu_taken(pid: int | None) -> LibvirtdUnavailable:
    holder = f"pid {pid}: {' '.join(_argv(pid))}" if pid else "it has gone since"
    return LibvirtdUnavailable(
        f"another libvirtd runs the QEMU driver ({holder}) and a machine has one: stop it "
        "first (python -m ipyvirt.testing.libvirtd stop [--dir DIR])"
    )


def _virsh(uri: str, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    virsh = shutil.which("virsh")
    if virsh is None:
        raise LibvirtdUnavailable("virsh is missing: apt-get install libvirt-clients")
    return subprocess.run(
        [virsh, "-q", "-c", uri, *args], capture_output=True, text=True, timeout=timeout
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ipyvirt.testing.libvirtd",
        description="A libvirtd for demos, detached: start prints its URIs, stop ends it.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="start a daemon and print its URIs, name=uri")
    start.add_argument("--qemu", action="store_true", help="serve qemu+unix:// too (root)")
    stop = commands.add_parser("stop", help="destroy its QEMU guests and stop the daemon")
    for command in (start, stop):
        command.add_argument(
            "--dir", type=Path, default=CLI_DIR, help=f"its config, socket, logs ({CLI_DIR})"
        )
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            _start(args.dir, args.qemu)
        else:
            _stop(args.dir)
    except LibvirtdUnavailable as e:
        print(f"libvirt-daemon: {e}", file=sys.stderr)
        return 1
    return 0


def _start(dir: Path, qemu: bool) -> None:
    daemon = Libvirtd.attach(dir)
    if daemon is not None and qemu and not daemon.qemu:
        raise LibvirtdUnavailable(
            f"the libvirtd running from {daemon.dir} has no QEMU driver: stop it first "
            f"(python -m ipyvirt.testing.libvirtd stop --dir {daemon.dir})"
        )
    if daemon is None:
        daemon = Libvirtd(qemu=qemu, dir=dir).start(detach=True)
    print(f"test={daemon.test_uri}")
    if daemon.qemu:
        print(f"qemu={daemon.qemu_uri}")


def _stop(dir: Path) -> None:
    daemon = Libvirtd.attach(dir)
    if daemon is None:
        print(f"libvirt-daemon: no libvirtd runs from {dir.absolute()}", file=sys.stderr)
        return
    daemon.stop()


if __name__ == "__main__":
    sys.exit(main())
