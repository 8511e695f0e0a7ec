"""A real JupyterLab server, and a Chromium page that uses it the way a person would.

:class:`Lab` runs ``jupyter lab`` in a temporary home of its own (config, settings, data,
runtime and IPython dirs), so neither the machine's Jupyter set-up nor an earlier run leaks in.
:class:`LabPage` opens a notebook in a fresh workspace, runs it from the menu and waits for
what shows on screen; every wait ends in an ``AssertionError`` that says what the page showed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import nbformat
from playwright.sync_api import Locator, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

__all__ = ["Lab", "LabPage", "LabUnavailable"]

# Lab's first start asks in a toast whether to fetch Jupyter's news; the toast would cover the
# lower right of every screenshot, and the news live on the internet. The answer is "never".
_USER_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    # Lab 4 renders only the cells near the viewport (their prompts and outputs are empty in
    # the page otherwise): a test reads every cell of a tutorial
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}

_KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}

# An error output: IPython's traceback header ("NameError   Traceback (most recent call
# last)") or a UsageError's one line. Both reach the page as stderr text.
_ERROR_LINE = re.compile(r"^\s*\w*(Error|Exception)\b", re.MULTILINE)

# What a notebook panel shows, read in one go: the kernel as its toolbar shows it, every code
# cell's input prompt ("[ ]:", "[*]:", "[3]:"), every output's MIME type and text.
_PANEL_STATE = """panel => ({
  status: panel.querySelector('.jp-Notebook-ExecutionIndicator')?.dataset.status ?? '',
  kernel: panel.querySelector('.jp-Toolbar-kernelName')?.innerText.trim() ?? '',
  prompts: [...panel.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
    .map(p => p.innerText.trim()),
  outputs: [...panel.querySelectorAll('.jp-OutputArea-output')]
    .map(o => [o.dataset.mimeType ?? '', o.innerText]),
})"""


class LabUnavailable(RuntimeError):
    """``jupyter lab`` did not start, or did not answer."""


class Lab:
    """``jupyter lab`` on 127.0.0.1 and a port the OS picks, without token or password, serving
    a temporary root dir. ``LIBVIRT_DEFAULT_URI`` passes through to its kernels
    (``test:///default`` when unset, as ``scripts/lab`` does)."""

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="ipyvirt-lab-"))
        self.root = self.home / "root"
        self.log = self.home / "jupyterlab.log"
        #: ``http://127.0.0.1:PORT/`` once started
        self.url = ""
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> Lab:
        self.root.mkdir()
        for name, values in _USER_SETTINGS.items():
            path = self.home / "config" / "lab" / "user-settings" / name
            path.parent.mkdir(parents=True)
            path.write_text(json.dumps(values))
        env = dict(
            os.environ,
            JUPYTER_CONFIG_DIR=str(self.home / "config"),
            JUPYTER_DATA_DIR=str(self.home / "data"),
            JUPYTER_RUNTIME_DIR=str(self.home / "runtime"),
            IPYTHONDIR=str(self.home / "ipython"),
            LIBVIRT_DEFAULT_URI=os.environ.get("LIBVIRT_DEFAULT_URI", "test:///default"),
        )
        command = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            # the OS picks a free port (no race with another server); the info file tells it
            "--port=0",
            "--ServerApp.port_retries=0",
            "--IdentityProvider.token=",
            # kernels are shut down over REST, without the browser's XSRF cookie
            "--ServerApp.disable_check_xsrf=True",
            "--ServerApp.allow_root=True",
            "--ServerApp.terminals_enabled=False",
            f"--ServerApp.root_dir={self.root}",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
            # window.jupyterapp: LabPage.set_theme runs Lab's own theme command
            "--LabApp.expose_app_in_browser=True",
        ]
        with open(self.log, "wb") as log:
            # a session of its own: the terminal's Ctrl-C reaches pytest, which stops the
            # server through stop(), rather than Lab's "shut down? (y/[n])" prompt
            self.proc = subprocess.Popen(
                command,
                env=env,
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self.url = self._wait_for_info(timeout)["url"]
            self._wait_until_answering(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_for_info(self, timeout: float) -> dict[str, Any]:
        assert self.proc is not None  # start() set it
        info = self.home / "runtime" / f"jpserver-{self.proc.pid}.json"
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise LabUnavailable(
                    f"jupyter lab exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                return dict(json.loads(info.read_text()))
            except (OSError, ValueError):  # not written yet, or half
                pass
            if time.monotonic() > deadline:
                raise LabUnavailable(
                    f"jupyter lab wrote no {info.name} in {timeout} s:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def _wait_until_answering(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.api("GET", "api/status")
                return
            except OSError as err:  # refused, or an HTTP error while it starts
                if time.monotonic() > deadline:
                    raise LabUnavailable(
                        f"jupyter lab at {self.url} did not answer in {timeout} s ({err}):\n"
                        f"{self.log_tail()}"
                    ) from None
            time.sleep(0.1)

    def set_user_setting(self, plugin: str, values: dict[str, Any]) -> None:
        """Set *plugin*'s user settings (``"@jupyterlab/apputils-extension:kernels-settings"``)
        as the Settings editor would save them: a page loaded from now on uses them."""
        package, name = plugin.split(":")
        path = (
            self.home / "config" / "lab" / "user-settings" / package / f"{name}.jupyterlab-settings"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))

    def api(self, method: str, path: str) -> Any:
        """Call the server's REST API: the decoded JSON answer, or None for an empty one."""
        request = urllib.request.Request(self.url + path, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def write_notebook(self, name: str, cells: Sequence[str]) -> str:
        """Write a notebook of code *cells* for the python3 kernel as *name* in the root dir;
        return its path as Lab names it."""
        notebook = nbformat.v4.new_notebook(metadata={"kernelspec": _KERNELSPEC})
        notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, path)
        return path.relative_to(self.root).as_posix()

    def shutdown_kernels(self) -> None:
        """Shut down every session and kernel (a test's kernels end with the test)."""
        for session in self.api("GET", "api/sessions"):
            self.api("DELETE", f"api/sessions/{session['id']}")
        for kernel in self.api("GET", "api/kernels"):
            self.api("DELETE", f"api/kernels/{kernel['id']}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Stop the server and its kernels, whatever state they are in."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()  # jupyter_server shuts its kernels down on SIGTERM, then exits
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        # Kernels the server left behind (it was killed, or crashed): jupyter_client starts
        # each in a session of its own, so they outlive it, but each names its connection file
        # in this lab's runtime dir on its command line, even once orphaned.
        leftovers = _processes_naming(str(self.home))
        for pid in leftovers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while not all(_gone(pid) for pid in leftovers) and time.monotonic() < deadline:
            time.sleep(0.02)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> Lab:
        try:
            return self.start()
        except BaseException:
            self.cleanup()  # the error carries the log's tail
            raise

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


class LabPage:
    """JupyterLab in a browser *page*: open a notebook, run it, wait for what it shows.

    Notebooks open in *workspace*, a fresh one for each test, so that Lab restores no tab
    that an earlier test left open. Screenshots go to *artifacts*.
    """

    def __init__(self, lab: Lab, page: Page, artifacts: Path, workspace: str) -> None:
        self.lab = lab
        self.page = page
        self.artifacts = artifacts
        self.workspace = workspace
        self.path = ""
        self._tab: Locator | None = None
        self._panel: Locator | None = None

    @property
    def panel(self) -> Locator:
        """The open notebook's panel (toolbar, cells, outputs)."""
        if self._panel is None:
            raise AssertionError("no notebook is open: call LabPage.open(path) first")
        return self._panel

    def open(self, path: str, timeout: float = 60) -> Locator:
        """Open the notebook at *path* (relative to the lab's root); wait until its kernel is
        idle. Return its panel."""
        self.path = path
        self.page.goto(f"{self.lab.url}lab/workspaces/{self.workspace}/tree/{path}")
        label = re.compile(rf"^{re.escape(path.rsplit('/', 1)[-1])}$")
        tab = self.page.locator("li.lm-TabBar-tab[data-type='document-title']").filter(
            has=self.page.locator(".lm-TabBar-tabLabel", has_text=label)
        )
        try:
            tab.wait_for(timeout=timeout * 1000)
        except PlaywrightTimeout:
            raise AssertionError(
                f"JupyterLab showed no tab for {path} within {timeout} s "
                f"(page title {self.page.title()!r})"
            ) from None
        self._tab = tab
        # the tab names the panel it shows, by id
        self._panel = self.page.locator(f"[id='{tab.get_attribute('data-id')}']")
        self.wait_for_kernel_idle(timeout)
        return self._panel

    def state(self) -> dict[str, Any]:
        """The panel as it is now: ``status`` and ``kernel`` (its toolbar's), ``prompts`` of
        the code cells, ``outputs`` as ``[mime type, text]``."""
        return dict(self.panel.evaluate(_PANEL_STATE))

    def kernel_status(self) -> str:
        """The kernel's state as the notebook's toolbar shows it: "idle", "busy" ..."""
        return str(self.state()["status"])

    def execution_counts(self) -> list[str]:
        """Every code cell's input prompt: ``["[1]:", "[2]:", "[ ]:"]``."""
        return list(self.state()["prompts"])

    def cell_outputs(self) -> list[list[str]]:
        """The text of each code cell's outputs, cell by cell, in order."""
        return [
            [text.strip() for text in cell]
            for cell in self.panel.evaluate(
                """panel => [...panel.querySelectorAll('.jp-CodeCell')].map(cell =>
                     [...cell.querySelectorAll('.jp-OutputArea-output')].map(o => o.innerText))"""
            )
        ]

    def errors(self) -> list[str]:
        """The text of every error output (tracebacks, UsageErrors)."""
        return _errors(self.state())

    def wait_for_kernel_idle(self, timeout: float = 60) -> None:
        """Wait until the notebook's kernel is started and idle, by the page and the server.

        The toolbar says "idle" before a kernel is even chosen ("No Kernel"), so a kernel
        must be named too; the server must list the notebook's session idle as well.
        """
        self._poll(
            lambda s: (
                s["status"] == "idle"
                and s["kernel"] not in ("", "No Kernel")
                and self._server_idle()
            ),
            timeout,
            f"the kernel of {self.path} was not idle",
        )

    def _server_idle(self) -> bool:
        sessions = self.lab.api("GET", "api/sessions")
        return any(
            s["path"] == self.path and s["kernel"]["execution_state"] == "idle" for s in sessions
        )

    def run_all(self, timeout: float = 60) -> None:
        """Run → Run All Cells, from the menu bar; wait until every code cell has run.

        Raises at once with the traceback when a cell raises.
        """
        before = self.execution_counts()
        assert self._tab is not None  # as the panel is
        # the Run menu acts on the current tab (its items are disabled for anything else)
        self._tab.click()
        self.page.get_by_role("menuitem", name="Run", exact=True).click()
        self.page.get_by_role("menuitem", name="Run All Cells", exact=True).click()

        def done(state: dict[str, Any]) -> bool:
            prompts = state["prompts"]
            return (
                state["status"] == "idle"
                and len(prompts) == len(before)
                and all(
                    re.fullmatch(r"\[\d+\]:", now) and now != then
                    for now, then in zip(prompts, before, strict=True)
                )
            )

        self._poll(done, timeout, f"Run All Cells did not finish for {self.path}")

    def output(
        self, text: str, *, selector: str = ".jp-OutputArea-output", exact: bool = False
    ) -> Locator:
        """The elements matching *selector* in the notebook's outputs that show *text*
        (all of their text, with *exact*)."""
        pattern = re.compile(rf"^\s*{re.escape(text)}\s*$") if exact else text
        return self.panel.locator(".jp-OutputArea").locator(selector).filter(has_text=pattern)

    def wait_for_output(
        self,
        text: str,
        *,
        selector: str = ".jp-OutputArea-output",
        exact: bool = False,
        timeout: float = 30,
    ) -> Locator:
        """Wait until an output shows *text* (see :meth:`output`); return it."""
        found = self.output(text, selector=selector, exact=exact).first
        try:
            found.wait_for(state="visible", timeout=timeout * 1000)
        except PlaywrightTimeout:
            now = [t.strip() for t in self.panel.locator(selector).all_inner_texts()]
            raise AssertionError(
                f"no {selector} output of {self.path} showed {text!r} within {timeout} s; "
                f"they show {now}; {self._describe()}"
            ) from None
        return found

    def run_new_cell(self, code: str, timeout: float = 30) -> str:
        """Add a code cell at the end, type *code* (one line) into it and run it with
        Shift+Enter, as a person would; return its output's text."""
        cells = self.panel.locator(".jp-CodeCell")
        count = cells.count()
        cells.last.locator(".jp-InputPrompt").click()  # select it, in command mode
        self.page.keyboard.press("Escape")
        self.page.keyboard.press("b")  # insert a cell below and edit it
        added = cells.nth(count)
        added.wait_for()
        added.locator(".cm-content").click()
        self.page.keyboard.insert_text(code)  # as pasted: no auto-closed brackets
        self.page.keyboard.press("Shift+Enter")
        output = added.locator(".jp-OutputArea-output").first
        try:
            output.wait_for(timeout=timeout * 1000)
        except PlaywrightTimeout:
            raise AssertionError(
                f"the cell {code!r} showed no output within {timeout} s; {self._describe()}"
            ) from None
        return output.inner_text().strip()

    def set_theme(self, name: str) -> None:
        """Wear the theme *name* ("JupyterLab Light", "JupyterLab Dark") as Settings → Theme
        does (Lab's own command), and wait until its colours apply. Lab keeps the choice in
        its settings, for every later page of the session's server: set it back."""
        if self.page.evaluate("() => document.body.dataset.jpThemeName") == name:
            return
        before = self.page.evaluate(_BACKGROUND)
        self.page.evaluate(
            "name => window.jupyterapp.commands.execute('apputils:change-theme', {theme: name})",
            name,
        )
        try:  # the name is set first, the stylesheet's colours after
            self.page.wait_for_function(
                f"""([name, before]) => document.body.dataset.jpThemeName === name
                      && ({_BACKGROUND})() !== before""",
                arg=[name, before],
                timeout=30_000,
            )
        except PlaywrightTimeout:
            raise AssertionError(f"JupyterLab did not wear {name!r} within 30 s") from None
        # Lab shows its splash screen (orange arcs) over the page while it changes theme:
        # a screenshot taken before it has faded has it across the view
        try:
            self.page.locator("#jupyterlab-splash").wait_for(state="detached", timeout=30_000)
        except PlaywrightTimeout:
            raise AssertionError(f"JupyterLab's splash stayed after wearing {name!r}") from None

    @staticmethod
    def shoot(view: Locator, path: Path) -> None:
        """Save what *view* shows now as the PNG *path*. Unlike an element screenshot, which
        waits for the element's box to hold still, this takes a live view as it is: one that
        redraws every half second (its numbers changing width) may never hold still."""
        view.scroll_into_view_if_needed()
        box = view.bounding_box()
        assert box is not None, f"{view} is not shown"
        path.parent.mkdir(parents=True, exist_ok=True)
        view.page.screenshot(path=path, clip=box)

    def screenshot(self, name: str) -> Path:
        """Save the page as ``<artifacts>/<name>.png``; return the path."""
        path = self.artifacts / f"{name}.png"
        self.artifacts.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=path)
        return path

    def _poll(self, ready: Callable[[dict[str, Any]], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while True:
            state = self.state()
            errors = _errors(state)
            if errors:
                raise AssertionError(f"a cell of {self.path} raised:\n{errors[0]}")
            if ready(state):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} within {timeout} s; {self._describe(state)}")
            self.page.wait_for_timeout(100)

    def _describe(self, state: dict[str, Any] | None = None) -> str:
        s = state if state is not None else self.state()
        outputs = [text.strip()[:200] for _, text in s["outputs"]]
        return f"kernel {s['kernel']!r} {s['status']!r}, prompts {s['prompts']}, outputs {outputs}"


# the theme's page background, as its stylesheet sets it
_BACKGROUND = "() => getComputedStyle(document.body).getPropertyValue('--jp-layout-color0').trim()"


def _errors(state: dict[str, Any]) -> list[str]:
    return [
        text
        for mime, text in state["outputs"]
        if mime == "application/vnd.jupyter.stderr" and _ERROR_LINE.search(text)
    ]


def _processes_naming(text: str) -> list[int]:
    """Every process (but this one) whose command line contains *text*."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                argv = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue  # gone meanwhile
            if text in argv:
                found.append(int(entry))
    return found


def _gone(pid: int) -> bool:
    """True once *pid* has exited (a zombie has: it waits for its parent, holding nothing)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")
