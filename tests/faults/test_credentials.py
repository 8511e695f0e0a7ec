"""Credentials in a real kernel: asked through the frontend, the passphrase as a password
field, and shown, kept or logged nowhere but in the Prompt's memory (and the daemon's sasldb).

The daemon wants SASL (SCRAM-SHA-256) on its sockets, for one user whose passphrase is new
on every run, so that finding it anywhere can only mean it leaked there.
"""

from __future__ import annotations

import ast
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest

from kernel import Answer, Kernel, Reply
from libvirtd import Libvirtd

pytestmark = [pytest.mark.daemon]

USER = "alice"
# the Connection %virt connect opened, by its name (the URI)
CONNECTION = "get_ipython().magics_manager.registry['VirtMagics'].connections[{name!r}]"
HISTORY = """
import json
_hm = get_ipython().history_manager
_hm.writeout_cache()
print(json.dumps({
    "In": list(In),
    "raw": list(_hm.input_hist_raw),
    "session": [[str(x) for x in row] for row in _hm.get_range(raw=True, output=True)],
    "file": str(_hm.hist_file),
}))
"""


@pytest.fixture(scope="module")
def secret() -> str:
    return secrets.token_urlsafe(24)


@pytest.fixture(scope="module")
def daemon(secret: str, sasl_host: None) -> Iterator[Libvirtd]:
    with Libvirtd(sasl=(USER, secret)) as d:
        yield d


class Recorded:
    """A kernel whose every cell's iopub messages are kept, to search them all."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.replies: list[Reply] = []

    def execute(
        self, code: str, answer: Answer | None = None, *, allow_stdin: bool | None = None
    ) -> Reply:
        reply = self.kernel.execute(code, 30, answer=answer, allow_stdin=allow_stdin)
        self.replies.append(reply)
        return reply

    def value(self, expr: str) -> Any:
        return ast.literal_eval(self.execute(f"print(repr({expr}))").ok().stdout)

    def iopub(self) -> list[dict[str, Any]]:
        """Every iopub message so far: of every cell, and those that came between cells."""
        return [m for r in self.replies for m in r.messages] + self.kernel.drain(0.2)


@pytest.fixture
def kernel() -> Iterator[Recorded]:
    k = Kernel()
    try:
        recorded = Recorded(k)
        recorded.execute("%load_ext ipyvirt").ok()
        yield recorded
    finally:
        k.shutdown()


@pytest.fixture
def kernel_started_with_ipyvirt() -> Iterator[Recorded]:
    """ipyvirt loaded as the kernel starts (as ``c.InteractiveShellApp.extensions`` does):
    imported while no cell runs."""
    k = Kernel("--ext=ipyvirt")
    try:
        yield Recorded(k)
    finally:
        k.shutdown()


def answering(passphrase: str) -> Answer:
    """A user at the frontend: the user name for names, *passphrase* in a password field."""

    def answer(request: dict[str, Any]) -> str:
        return passphrase if request["password"] else USER

    return answer


def _name_and_passphrase_requests(reply: Reply) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    requests = [m["content"] for m in reply.input_requests]
    names = [r for r in requests if " name" in r["prompt"]]
    passphrases = [r for r in requests if "password" in r["prompt"]]
    assert names and len(passphrases) == 1, requests
    assert len(names) + 1 == len(requests), f"asked for something else too: {requests}"
    assert requests[-1] is passphrases[0], "the passphrase is asked for last"
    return names, passphrases[0]


def _creds(user: str, passphrase: str) -> list[Any]:
    def callback(credentials: list[list[Any]], opaque: object) -> int:
        for cred in credentials:
            cred[4] = user if cred[0] == libvirt.VIR_CRED_AUTHNAME else passphrase
        return 0

    return [[libvirt.VIR_CRED_AUTHNAME, libvirt.VIR_CRED_PASSPHRASE], callback, None]


def _refused(opening: Any, *args: Any) -> str:
    with pytest.raises(libvirt.libvirtError) as refused:
        opening(*args).close()
    return str(refused.value.get_error_message())


def test_the_daemon_wants_the_user_and_the_passphrase(daemon: Libvirtd, secret: str) -> None:
    conn = libvirt.openAuth(daemon.test_uri, _creds(USER, secret), 0)
    try:
        assert [d.name() for d in conn.listAllDomains()] == ["test"]
    finally:
        conn.close()
    wrong = secrets.token_urlsafe(24)
    for user, passphrase in ((USER, wrong), ("mallory", secret)):
        refusal = _refused(libvirt.openAuth, daemon.test_uri, _creds(user, passphrase), 0)
        assert "authentication failed" in refusal
    for plain in (libvirt.open, libvirt.openReadOnly):
        assert "SASL" in _refused(plain, daemon.test_uri)
    # alice is only in the daemon's own sasldb: its SASL config came from its dir
    assert (daemon.sasl_dir / "libvirt.conf").read_text().startswith("mech_list: scram-sha-256")


@pytest.mark.kernel
def test_the_passphrase_is_asked_as_a_password_and_never_shown(
    daemon: Libvirtd, kernel: Recorded, secret: str
) -> None:
    uri = daemon.test_uri
    connecting = kernel.execute(f"%virt connect {uri} --auth --rw", answer=answering(secret))
    names, passphrase = _name_and_passphrase_requests(connecting.ok())
    assert all(r["password"] is False for r in names), names
    assert passphrase["password"] is True, passphrase
    assert connecting.result.endswith(" read-write open>"), connecting.result
    conn = CONNECTION.format(name=uri)
    # the watch connection was opened with the answers kept: nothing asked twice
    assert kernel.value(f"{conn}.shares_connection") is False
    listing = kernel.execute("%virt list").ok()
    assert any(line.split()[:1] == ["test"] for line in listing.result.splitlines()), listing
    kernel.execute("%virt status").ok()
    reprs = [kernel.value(f"repr({conn})"), kernel.value(f"repr({conn}._credentials)")]
    assert reprs[0].startswith(f"<ipyvirt.Connection {uri!r} "), reprs
    assert reprs[1].startswith("<ipyvirt.Prompt ") and "answers kept" in reprs[1], reprs
    kept = json.loads(kernel.execute(HISTORY).ok().stdout)
    assert any("--auth" in cell for cell in kept["In"]), kept  # the history is the real one

    assert secret not in json.dumps(kept)
    database = Path(kept["file"])
    if database.is_file():  # ":memory:" when IPython keeps no history file
        assert uri.encode() in database.read_bytes(), "this session is written to it"
        for f in (database, *database.parent.glob(f"{database.name}-*")):  # -journal, -wal
            assert secret.encode() not in f.read_bytes(), f"{f} holds it"
    assert not any(secret in text for text in reprs)
    _nowhere_on_iopub(secret, kernel)
    _nowhere_in_the_daemons_files(secret, daemon)


@pytest.mark.kernel
def test_a_wrong_passphrase_is_one_line_naming_the_uri(
    daemon: Libvirtd, kernel: Recorded, secret: str
) -> None:
    uri = daemon.test_uri
    wrong = secrets.token_urlsafe(24)
    failed = kernel.execute(f"%virt connect {uri} --auth --name wrong", answer=answering(wrong))
    _, passphrase = _name_and_passphrase_requests(failed)
    assert passphrase["password"] is True
    assert "authentication failed" in _one_usage_error(failed, uri)
    assert failed.stdout == "" and failed.outputs == [], failed
    # and nothing was kept: no connection opened
    nothing = kernel.execute("%virt list")
    assert "no connection is open" in nothing.stderr, nothing
    for passphrase_given in (wrong, secret):
        _nowhere_on_iopub(passphrase_given, kernel)
        _nowhere_in_the_daemons_files(passphrase_given, daemon)


def _nowhere_on_iopub(secret: str, kernel: Recorded) -> None:
    """Not in any iopub message the kernel sent: any cell's, or between cells."""
    messages = kernel.iopub()
    # all of them, not only what Reply sorts out (streams, results): statuses, inputs too
    assert {"status", "execute_input"} <= {m["msg_type"] for m in messages}
    for m in messages:
        assert secret not in json.dumps(m, default=str), f"{m['msg_type']} shows it"


def _nowhere_in_the_daemons_files(secret: str, daemon: Libvirtd) -> None:
    """Not in its log, config, stderr: every file of its dir but the sasldb."""
    files = [f for f in daemon.dir.rglob("*") if f.is_file() and f != daemon.sasldb]
    assert daemon.log in files, files
    for f in files:
        assert secret.encode() not in f.read_bytes(), f"{f} holds it"


def _one_usage_error(reply: Reply, uri: str) -> str:
    """IPython shows a UsageError as one line on stderr, with no error message (traceback)."""
    assert reply.error is None and not reply.traceback, reply.traceback
    assert not [m for m in reply.messages if m["msg_type"] == "error"]
    message = reply.stderr.strip()
    assert "\n" not in message and "Traceback" not in message, message
    assert message.startswith(f"UsageError: cannot connect to {uri}: "), message
    return message


# Three things the first Prompt got wrong, each pinned.


@pytest.mark.kernel
def test_only_the_user_name_and_the_passphrase_are_asked(
    daemon: Libvirtd, kernel: Recorded, secret: str
) -> None:
    reply = kernel.execute(f"%virt connect {daemon.test_uri} --auth", answer=answering(secret))
    asked = [(m["content"]["prompt"], m["content"]["password"]) for m in reply.ok().input_requests]
    assert [password for _, password in asked] == [False, True], asked


@pytest.mark.kernel
def test_a_frontend_that_cannot_ask_gets_one_line(daemon: Libvirtd, kernel: Recorded) -> None:
    uri = daemon.test_uri
    reply = kernel.execute(f"%virt connect {uri} --auth", allow_stdin=False)
    assert not reply.input_requests
    _one_usage_error(reply, uri)


@pytest.mark.kernel
def test_credentials_are_asked_when_ipyvirt_is_loaded_at_kernel_start(
    daemon: Libvirtd, kernel_started_with_ipyvirt: Recorded, secret: str
) -> None:
    kernel = kernel_started_with_ipyvirt
    uri = daemon.test_uri
    reply = kernel.execute(f"%virt connect {uri} --auth", answer=answering(secret))
    _, passphrase = _name_and_passphrase_requests(reply.ok())
    assert passphrase["password"] is True
    _nowhere_on_iopub(secret, kernel)
