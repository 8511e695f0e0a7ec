"""A real ipykernel driven through jupyter_client, for tests that need one."""

from __future__ import annotations

import os
import queue
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

__all__ = ["Answer", "Kernel", "Reply"]

#: answers an input_request: its content (``prompt``, ``password``) in, the reply's value out
Answer = Callable[[dict[str, Any]], str]


@dataclass
class Reply:
    """What one execute_request produced on iopub."""

    #: the execute_reply's status: "ok", "error", or "aborted" (ipykernel skipped the cell)
    status: str = ""
    stdout: str = ""
    stderr: str = ""
    #: (ename, evalue) of an error, if any
    error: tuple[str, str] | None = None
    traceback: list[str] = field(default_factory=list)
    #: text/plain of execute_result and display_data, in order
    outputs: list[str] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    #: the input_request messages the cell sent on the stdin channel, in order
    input_requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def result(self) -> str:
        return self.outputs[-1] if self.outputs else ""

    def ok(self) -> Reply:
        assert self.error is None, f"{self.error}\n{''.join(self.traceback)}\n{self.stderr}"
        # a UsageError fails the cell with no error message, only a stderr line
        assert self.status != "error", f"the cell failed: {self.stderr}"
        assert self.status == "ok", f"the cell did not run: its execute_reply says {self.status!r}"
        return self


class Kernel:
    """A python3 kernel in the tests' interpreter (the project's venv)."""

    def __init__(self, *arguments: str) -> None:
        """Start a kernel; *arguments* are added to its command line."""
        # ipc sockets named in a dir of this kernel's own: by default they go in the cwd as
        # kernel-ipc-N, and two processes starting kernels at once pick the same names
        self._ipc_dir = tempfile.mkdtemp(prefix="ipyvirt-kernel-")
        self.km = KernelManager(
            kernel_name="python3", transport="ipc", ip=os.path.join(self._ipc_dir, "kernel")
        )
        self.km.kernel_spec.argv[0] = sys.executable  # this venv's python, whatever the spec says
        self.km.start_kernel(extra_arguments=list(arguments))
        self.kc: BlockingKernelClient = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        #: iopub messages that arrived between cells (no execute_request running)
        self.between: list[dict[str, Any]] = []
        #: execute_reply statuses read from the shell channel, by request msg_id
        self._statuses: dict[str, str] = {}

    def execute(
        self,
        code: str,
        timeout: float = 60,
        subshell_id: str | None = None,
        *,
        answer: Answer | None = None,
        allow_stdin: bool | None = None,
    ) -> Reply:
        """Run *code*; return when the kernel is idle again for it.

        With *answer* the cell may ask for input (``input()``, ``getpass``): each
        input_request's content (``prompt``, ``password``) goes to *answer*, whose return value
        is the reply. *allow_stdin* defaults to whether there is an *answer*.
        """
        allow = answer is not None if allow_stdin is None else allow_stdin
        # Nothing is queued behind a cell that is waited for, so an error in it has nothing
        # to abort. With stop_on_error, ipykernel 6 keeps aborting for one turn of its loop
        # after the error's reply, and the next cell, sent at once, could be skipped (its
        # execute_reply says "aborted"; ok() catches that, which is how this was found).
        msg_id = self.submit(code, subshell_id, allow_stdin=allow, stop_on_error=False)
        return self.collect(msg_id, timeout, answer)

    def submit(
        self,
        code: str,
        subshell_id: str | None = None,
        *,
        allow_stdin: bool = False,
        stop_on_error: bool = True,
    ) -> str:
        """Send *code* to run and return its msg_id without waiting (see :meth:`collect`).

        With *allow_stdin* the kernel sends input requests (see :meth:`collect`'s *answer*);
        without, ``input()`` in the cell raises StdinNotImplementedError. *stop_on_error*
        (what JupyterLab sends) has the kernel abort requests queued behind a failing one.
        """
        self.drain()
        return self._send(code, subshell_id, allow_stdin, stop_on_error)

    def _send(
        self,
        code: str,
        subshell_id: str | None = None,
        allow_stdin: bool = False,
        stop_on_error: bool = True,
    ) -> str:
        content = {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": allow_stdin,
            "stop_on_error": stop_on_error,
        }
        msg = self.kc.session.msg("execute_request", content)
        if subshell_id is not None:
            msg["header"]["subshell_id"] = subshell_id
        self.kc.shell_channel.send(msg)
        return str(msg["header"]["msg_id"])

    def collect(self, msg_id: str, timeout: float = 60, answer: Answer | None = None) -> Reply:
        """Wait for what a :meth:`submit`-ted cell produces, until the kernel is idle again.

        With *answer*, input requests are answered with ``answer(content)`` as they come.
        """
        reply = Reply()
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no idle status within {timeout} s; got {reply}")
            if answer is not None and self._answer_input(msg_id, reply, answer):
                continue
            try:
                # with stdin to serve, look there again every 20 ms
                msg = self.kc.get_iopub_msg(timeout=left if answer is None else min(left, 0.02))
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                self.between.append(msg)
                continue
            if _take(reply, msg):
                reply.status = self._status(msg_id, deadline)
                return reply

    def run_all(
        self,
        codes: Sequence[str],
        timeout: float = 120,
        *,
        arrived: list[dict[str, Any]] | None = None,
    ) -> list[Reply]:
        """Send every cell in *codes* at once, as JupyterLab's Run All does (each request
        is queued in the kernel before the one before it ends), then wait for them all.

        *arrived*, if given, gets every iopub message in the order it came."""
        self.drain()
        ids = [self._send(code) for code in codes]
        replies = {msg_id: Reply() for msg_id in ids}
        pending = set(ids)
        deadline = time.monotonic() + timeout
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{len(pending)} of {len(ids)} cells not idle in {timeout} s")
            try:
                msg = self.kc.get_iopub_msg(timeout=left)
            except queue.Empty:
                continue
            if arrived is not None:
                arrived.append(msg)
            parent = msg["parent_header"].get("msg_id")
            if parent not in replies:
                self.between.append(msg)
            elif _take(replies[parent], msg):
                pending.discard(parent)
        for msg_id in ids:
            replies[msg_id].status = self._status(msg_id, deadline)
        return [replies[msg_id] for msg_id in ids]

    def _status(self, msg_id: str, deadline: float) -> str:
        """The status of request *msg_id*'s execute_reply (it may come before or after the
        idle status on iopub)."""
        if msg_id not in self._statuses:
            self._shell_reply(msg_id, deadline)
        return self._statuses.pop(msg_id)

    def _shell_reply(self, msg_id: str, deadline: float) -> dict[str, Any]:
        """Read the shell channel until the reply to request *msg_id*; the execute_replies
        read on the way are kept (their statuses) for their cells' turn."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no reply to {msg_id} on the shell channel")
            try:
                msg = self.kc.get_shell_msg(timeout=left)
            except queue.Empty:
                continue
            if msg["msg_type"] == "execute_reply":
                self._statuses[msg["parent_header"]["msg_id"]] = msg["content"]["status"]
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg

    def _answer_input(self, msg_id: str, reply: Reply, answer: Answer) -> bool:
        """Answer one pending input request of cell *msg_id*, if there is one."""
        try:
            msg = self.kc.get_stdin_msg(timeout=0)
        except queue.Empty:
            return False
        assert msg["msg_type"] == "input_request", msg
        assert msg["parent_header"].get("msg_id") == msg_id, msg
        reply.input_requests.append(msg)
        self.kc.input(answer(msg["content"]))
        return True

    def drain(self, wait: float = 0.0) -> list[dict[str, Any]]:
        """Collect iopub messages that arrive without a cell running, for *wait* seconds."""
        deadline = time.monotonic() + wait
        while True:
            try:
                self.between.append(
                    self.kc.get_iopub_msg(timeout=max(0.0, deadline - time.monotonic()))
                )
            except queue.Empty:
                return self.between

    def send_custom(
        self, comm_id: str, content: dict[str, Any], subshell_id: str | None = None
    ) -> None:
        """Send what a widget's view sends with ``model.send(content)`` (an anywidget custom
        message) to the widget with *comm_id* (its ``model_id``), as the browser does; with
        *subshell_id*, to that subshell, as JupyterLab's ``commsOverSubshells`` does."""
        data = {"method": "custom", "content": content}
        msg = self.kc.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
        if subshell_id is not None:
            msg["header"]["subshell_id"] = subshell_id
        self.kc.shell_channel.send(msg)

    def supports(self, feature: str) -> bool:
        """Whether the kernel lists *feature* (e.g. ``"kernel subshells"``) in its
        kernel_info_reply's ``supported_features``."""
        reply = self._shell_reply(self.kc.kernel_info(), time.monotonic() + 30)
        return feature in reply["content"].get("supported_features", [])

    def create_subshell(self) -> str:
        """A new subshell's id; fails at once on a kernel without subshells (ipykernel < 7),
        which would leave the request unanswered."""
        if not self.supports("kernel subshells"):
            raise RuntimeError(
                f"this kernel (ipykernel {version('ipykernel')}) has no subshells: "
                "they need ipykernel 7 or later"
            )
        msg = self.kc.session.msg("create_subshell_request", {})
        self.kc.control_channel.send(msg)
        reply = self.kc.control_channel.get_msg(timeout=30)
        assert reply["content"]["status"] == "ok", reply["content"]
        return str(reply["content"]["subshell_id"])

    def value(self, expr: str, timeout: float = 60) -> Any:
        """Evaluate *expr* in the kernel; its repr, evaluated here (literals only)."""
        import ast

        return ast.literal_eval(self.execute(f"print(repr({expr}))", timeout).ok().stdout)

    def shutdown(self) -> None:
        self.kc.stop_channels()
        # the client's own zmq context is destroyed only when the client is collected; collected
        # first, it warns "Unclosed context" (an error in whichever test the gc runs in)
        self.kc.context.destroy(linger=0)
        self.km.shutdown_kernel(now=True)
        shutil.rmtree(self._ipc_dir, ignore_errors=True)


def _take(reply: Reply, msg: dict[str, Any]) -> bool:
    """Add iopub *msg* to its cell's *reply*; True once it says the kernel is idle again."""
    reply.messages.append(msg)
    kind, c = msg["msg_type"], msg["content"]
    if kind == "stream":
        if c["name"] == "stdout":
            reply.stdout += c["text"]
        else:
            reply.stderr += c["text"]
    elif kind in ("execute_result", "display_data", "update_display_data"):
        reply.outputs.append(c["data"].get("text/plain", ""))
    elif kind == "error":
        reply.error = (c["ename"], c["evalue"])
        reply.traceback = c["traceback"]
    elif kind == "status" and c["execution_state"] == "idle":
        return True
    return False
