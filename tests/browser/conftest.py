"""Browser tests: a real JupyterLab for the session, a real Chromium page for each test.

The browser is Debian's ``chromium`` (``scripts/setup`` installs it), driven by Playwright;
Playwright's own browser downloads are never used. Screenshots go to ``test-artifacts/`` at
the repository root (git-ignored): those a test takes at its key moments, and, when a test
fails, ``<test>-failure.png`` and ``<test>-jupyterlab.log`` from the moment it failed.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, ViewportSize, sync_playwright

from .lab import Lab, LabPage

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # root in a container: no user namespaces for the sandbox
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
VIEWPORT: ViewportSize = {"width": 1400, "height": 900}


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """``jupyter lab`` for the whole session, stopped with its kernels at the end."""
    with Lab() as server:
        yield server


@pytest.fixture
def page() -> Iterator[Page]:
    """A page of a fresh headless Chromium (its own profile dir), closed after the test."""
    if not CHROMIUM.exists():
        raise RuntimeError(
            f"{CHROMIUM} is not installed: run scripts/setup (as root it installs chromium), "
            "or apt-get install --no-install-recommends chromium"
        )
    # Playwright per test, not per session: its sync API leaves an asyncio loop marked as
    # running on this thread while it is active, which the other tests' loops would meet
    with (
        tempfile.TemporaryDirectory(prefix="ipyvirt-chromium-") as profile,
        sync_playwright() as playwright,
    ):
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=VIEWPORT,
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(30_000)
            yield page
        finally:
            context.close()


@pytest.fixture
def jupyter(lab: Lab, page: Page, request: pytest.FixtureRequest) -> Iterator[LabPage]:
    """*page* on *lab*, in a workspace named after the test; the test's kernels are shut down
    after it."""
    yield LabPage(lab, page, ARTIFACTS, workspace=re.sub(r"\W+", "-", request.node.name))
    lab.shutdown_kernels()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    # here, not in a fixture's teardown: the page still shows the failure, kernels still run
    report = yield
    if report.failed and report.when in ("setup", "call"):
        saved = _keep_evidence(item)
        if saved:
            report.sections.append(("browser test artifacts", "\n".join(saved)))
    return report


def _keep_evidence(item: pytest.Item) -> list[str]:
    name = re.sub(r"\W+", "-", item.name)
    funcargs = getattr(item, "funcargs", {})
    saved = []
    ARTIFACTS.mkdir(exist_ok=True)
    page = funcargs.get("page")
    if isinstance(page, Page):
        path = ARTIFACTS / f"{name}-failure.png"
        try:
            page.screenshot(path=path)
            saved.append(str(path))
        except PlaywrightError as err:
            saved.append(f"no screenshot: {err}")
    lab = funcargs.get("lab")
    if isinstance(lab, Lab) and lab.log.exists():
        path = ARTIFACTS / f"{name}-jupyterlab.log"
        shutil.copyfile(lab.log, path)
        saved.append(str(path))
    return saved
