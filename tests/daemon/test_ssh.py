"""``test+ssh://`` through a real sshd: what goes wrong is one line that says what to do, and
ssh never waits on a question no one sees (ipyvirt opens ``+ssh`` URIs with ``no_tty=1``).

The sshd and its keys are the tests' own (ipyvirt.testing.sshd); libvirt runs the system
``ssh`` (with a config of ours: ``command=``) and ``nc -U`` on the far side.
"""

from __future__ import annotations

import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipyvirt.connection import ConnectFailed, open_libvirt
from ipyvirt.remote import noninteractive
from ipyvirt.testing.libvirtd import Libvirtd
from ipyvirt.testing.sshd import Sshd

from kernel import Kernel
from transport import one_line

pytestmark = [pytest.mark.daemon]


@pytest.fixture
def sshd(ssh_host: None) -> Iterator[Sshd]:
    """An sshd whose host key ssh does not know yet."""
    with Sshd() as s:
        yield s


def refusal(uri: str) -> str:
    with pytest.raises(ConnectFailed) as failed:
        open_libvirt(uri, True).close()
    return one_line(str(failed.value), uri)


def test_an_unknown_host_key_says_how_to_accept_it(sshd: Sshd, libvirtd: Libvirtd) -> None:
    uri = sshd.uri(libvirtd.socket)
    said = refusal(uri)
    command = f"ssh -p {sshd.port} {sshd.user}@127.0.0.1"
    assert said == (
        f"ssh does not know the host key of 127.0.0.1:{sshd.port}: check it and accept it "
        f"once in a terminal, with `{command}` (answer yes), then connect again"
    )
    # do as it says (answering yes: accept-new), with the tests' ssh config; then it opens
    accept = [str(sshd.ssh), "-o", "StrictHostKeyChecking=accept-new", "-i", str(sshd.client_key)]
    done = subprocess.run([*accept, *command.split()[1:], "true"], capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    conn = open_libvirt(uri, True)
    try:
        assert [d.name() for d in conn.listAllDomains()] == ["test"]
        assert conn.getURI() == noninteractive(uri) != uri  # opened with no_tty=1
    finally:
        conn.close()


def test_no_verify_would_take_a_changed_host_key_too(sshd: Sshd, libvirtd: Libvirtd) -> None:
    """Why the one line never suggests libvirt's no_verify=1 for a new host: ssh then also
    connects to a host whose key changed (libvirt's docs say existing keys are still
    checked), and the URI keeps it for every reconnection."""
    unchecked = sshd.uri(libvirtd.socket, no_verify="1")
    open_libvirt(unchecked, True).close()
    assert f"[127.0.0.1]:{sshd.port} ssh-ed25519 " in sshd.known_hosts.read_text()
    other = sshd.client_key.with_suffix(".pub").read_text().split()[:2]
    sshd.known_hosts.write_text(f"[127.0.0.1]:{sshd.port} {' '.join(other)}\n")
    conn = open_libvirt(unchecked, True)  # a changed key, and it opens all the same
    conn.close()
    assert refusal(sshd.uri(libvirtd.socket)).startswith("the host key of 127.0.0.1:")


def test_a_changed_host_key_is_refused_in_one_line(sshd: Sshd, libvirtd: Libvirtd) -> None:
    other = sshd.client_key.with_suffix(".pub").read_text().split()[:2]  # not the host's
    sshd.known_hosts.write_text(f"[127.0.0.1]:{sshd.port} {' '.join(other)}\n")
    said = refusal(sshd.uri(libvirtd.socket))
    assert said.startswith(f"the host key of 127.0.0.1:{sshd.port} is not the one ssh accepted")
    assert f"`ssh-keygen -R '[127.0.0.1]:{sshd.port}'`" in said


def test_a_host_that_asks_for_a_password_fails_in_one_line(sshd: Sshd, libvirtd: Libvirtd) -> None:
    sshd.accept_host_key()
    uri = sshd.uri(libvirtd.socket, keyfile=str(sshd.stranger_key))
    said = refusal(uri)
    assert said == (
        f"127.0.0.1:{sshd.port} did not take the key {sshd.stranger_key} and asks for a "
        "password, which ssh cannot ask here: install your key there once, with "
        f"`ssh-copy-id -p {sshd.port} {sshd.user}@127.0.0.1` in a terminal, or name the key "
        "with ?keyfile=PATH"
    )
    # ssh was asked not to ask (BatchMode): it offered no password at all
    assert "Failed password" not in sshd.log.read_text()


def test_no_daemon_behind_the_socket(sshd: Sshd) -> None:
    sshd.accept_host_key()
    missing = "/nonexistent/libvirt-sock"
    said = refusal(sshd.uri(missing))
    assert said.startswith(f"no libvirt daemon listens at {missing} on 127.0.0.1 (nc: "), said


def test_virt_ssh_helper_knows_only_the_systems_sockets(sshd: Sshd, libvirtd: Libvirtd) -> None:
    """libvirt 9.0 reaches a URI's socket= with nc when the URI has no proxy=; with proxy=auto
    or native it runs virt-ssh-helper, which ignores socket= and looks where the system's
    daemon would be (none runs here)."""
    sshd.accept_host_key()
    for proxy in ("auto", "native"):
        said = refusal(sshd.uri(libvirtd.socket, proxy=proxy))
        assert said.startswith("no libvirt daemon on 127.0.0.1 at /var/run/libvirt/libvirt-sock")
        assert said.endswith(
            ": virt-ssh-helper ignores socket=; leave out proxy= and libvirt reaches that "
            "socket with nc"
        ), said
    nowhere = sshd.uri(libvirtd.socket, proxy="native").replace(f"socket={libvirtd.socket}&", "")
    assert refusal(nowhere).endswith(
        ": start it there (e.g. `sudo systemctl start libvirtd`), or name its socket with "
        "?socket=PATH"
    )
    open_libvirt(sshd.uri(libvirtd.socket, proxy="netcat"), True).close()


def test_no_nc_on_the_host(sshd: Sshd, libvirtd: Libvirtd) -> None:
    sshd.accept_host_key()
    said = refusal(sshd.uri(libvirtd.socket, netcat="ipyvirt-no-such-nc"))
    assert said == (
        "127.0.0.1 has no `ipyvirt-no-such-nc` to reach the daemon's socket: install "
        "netcat-openbsd there, or leave out ?socket= so that libvirt's virt-ssh-helper finds "
        "the daemon"
    )


def test_no_sshd_on_the_port(sshd: Sshd, libvirtd: Libvirtd) -> None:
    sshd.stop()  # nothing listens on its port now
    said = refusal(sshd.uri(libvirtd.socket))
    assert said.startswith(f"ssh cannot reach 127.0.0.1:{sshd.port} (connect to host"), said
    assert said.endswith("Connection refused): is sshd running there, on that port?"), said


def test_no_ssh_program(sshd: Sshd, libvirtd: Libvirtd) -> None:
    missing = "/nonexistent/ssh"
    said = refusal(sshd.uri(libvirtd.socket, command=missing))
    assert said.startswith(f"cannot run {missing} (No such file or directory): "), said


@pytest.mark.kernel
def test_virt_connect_over_ssh_in_a_kernel(sshd: Sshd, libvirtd: Libvirtd) -> None:
    uri = sshd.uri(libvirtd.socket)
    kernel = Kernel()
    try:
        kernel.execute("%load_ext ipyvirt").ok()
        # a new host: one line, at once, and nothing asked of the frontend
        unknown = kernel.execute(f"%virt connect {uri}", 60)
        assert not unknown.input_requests and unknown.error is None, unknown
        message = unknown.stderr.strip()
        assert message.startswith(f"UsageError: cannot connect to {uri}: ssh does not know")
        assert "\n" not in message
        sshd.accept_host_key()
        opened = kernel.execute(f"%virt connect {uri} --rw", 60).ok()
        assert opened.result.endswith(" read-write open>"), opened.result
        listing = kernel.execute("%virt list").ok()
        assert any(line.split()[:1] == ["test"] for line in listing.result.splitlines())
        # a password it cannot ask, even with --auth: one line, nothing asked
        stranger = sshd.uri(libvirtd.socket, keyfile=str(sshd.stranger_key))
        asked = kernel.execute(
            f"%virt connect {stranger} --auth --name p", 60, answer=lambda request: "no"
        )
        assert not asked.input_requests, asked.input_requests
        assert "asks for a password, which ssh cannot ask here" in asked.stderr
        assert asked.stderr.strip().count("\n") == 0
    finally:
        kernel.shutdown()


# A process with a controlling terminal, as IPython in a terminal or a notebook server started
# from one (and its kernels' ssh children, were they not in a session of their own): ssh asks
# there. The child prints what opening the URI gave, then exits.
OPEN_ON_A_TERMINAL = """
import sys, libvirt
from ipyvirt.connection import ConnectFailed, open_libvirt
libvirt.registerErrorHandler(lambda *a: None, None)
opening = libvirt.openReadOnly if sys.argv[1] == "plain" else lambda u: open_libvirt(u, True)
try:
    opening(sys.argv[2]).close()
    print("OPENED")
except (libvirt.libvirtError, ConnectFailed) as e:
    print("REFUSED", e)
"""


def on_a_terminal(how: str, uri: str, timeout: float = 30.0) -> str:
    """What a child on a terminal of its own shows there until it exits or ssh asks (a
    bound of *timeout* s on a child that does neither)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: a session leader with the pty as its controlling terminal
        os.execv(sys.executable, [sys.executable, "-c", OPEN_ON_A_TERMINAL, how, uri])
    shown = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # EIO: the child and its terminal are gone
                    break
                if not chunk:
                    break
                shown += chunk
            if b"(yes/no" in shown:  # ssh asks: no one will answer
                break
    finally:
        os.kill(pid, signal.SIGKILL)  # one that asked, or outlived the bound; else a zombie
        os.waitpid(pid, 0)
        os.close(fd)
    return shown.decode(errors="replace")


def test_on_a_terminal_ssh_would_ask_and_ipyvirt_keeps_it_from_asking(
    sshd: Sshd, libvirtd: Libvirtd
) -> None:
    uri = sshd.uri(libvirtd.socket)
    # libvirt's own open of the same URI: ssh asks on the terminal, and waits
    plain = on_a_terminal("plain", uri)
    assert "Are you sure you want to continue connecting (yes/no" in plain, plain
    # ipyvirt's: no question, one line at once
    shown = on_a_terminal("ipyvirt", uri)
    assert "yes/no" not in shown, shown
    assert f"REFUSED cannot connect to {uri}: ssh does not know the host key" in shown, shown


STARTED_THEN_KILLED = """
import os, signal
from ipyvirt.testing.sshd import Sshd
s = Sshd().start()
with open(f"/proc/{s.proc.pid}/cmdline", "rb") as f:  # sshd itself (setpriv exec'd it)
    assert f"-f {s.dir}/".encode() in f.read().replace(b"\\0", b" ")
print(s.proc.pid, s.dir, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_an_sshd_does_not_outlive_the_process_that_started_it(ssh_host: None) -> None:
    done = subprocess.run(
        [sys.executable, "-c", STARTED_THEN_KILLED], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    pid, dir = done.stdout.split()
    try:
        deadline = time.monotonic() + 30  # a bound on a hang, not a speed check
        while Path(f"/proc/{pid}").exists() and f"-f {dir}/" in _cmdline(pid):
            assert time.monotonic() < deadline, f"sshd {pid} still runs"
            time.sleep(0.05)
    finally:
        shutil.rmtree(dir, ignore_errors=True)


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
