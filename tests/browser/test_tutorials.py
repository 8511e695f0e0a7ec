"""Every tutorial run with Run All in a real JupyterLab: no cell raises, and every output that
shows a widget in the stored notebook shows that widget on the page once the run is over.

Run All sends every cell before the first has run, and Lab renders a widget output when its
model arrives: a later cell that closes a widget shown earlier leaves that output blank (and
Voilà, which renders after the run, says "Error displaying widget: model not found").
The tutorials that show widgets are opened in Voilà too. Screenshots:
``test-artifacts/tutorial-NAME.png`` (Lab, at the last widget, or the end) and
``voila-NAME.png``.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from playwright.sync_api import Page

from .conftest import ARTIFACTS
from .lab import Lab, LabPage
from .voila import Server, free_port, serve

pytestmark = pytest.mark.browser

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
TUTORIALS = sorted(NOTEBOOKS.glob("*.ipynb"))
WIDGET = "application/vnd.jupyter.widget-view+json"
# a widget's view on the page: ipywidgets' own views carry .jupyter-widgets; an anywidget
# view (ipyvirt.widgets.view.View) does not, and ipyvirt's draw into an .ipyvirt-view
VIEW = ".jupyter-widgets, .ipyvirt-view"

# Each code cell's outputs as the page shows them: the text, how many widget views are inside,
# and whether the output takes any room. (Lab sets no MIME type on a widget's output element.)
_OUTPUTS = """panel => [...panel.querySelectorAll('.jp-CodeCell')].map(cell =>
  [...cell.querySelectorAll('.jp-OutputArea-output')].map(o => ({
    text: o.innerText,
    views: o.querySelectorAll('.jupyter-widgets, .ipyvirt-view').length,
    height: o.getBoundingClientRect().height,
  })))"""


def _widget_outputs(notebook: nbformat.NotebookNode) -> dict[int, int]:
    """Code cell index: how many widget outputs the stored notebook has there."""
    code = [c for c in notebook.cells if c.cell_type == "code"]
    counts = {i: sum(WIDGET in o.get("data", {}) for o in c.outputs) for i, c in enumerate(code)}
    return {i: n for i, n in counts.items() if n}


def _problems(shown: list[list[dict[str, Any]]], expected: dict[int, int]) -> list[str]:
    problems = []
    for i, outputs in enumerate(shown):
        for out in outputs:
            if "Error displaying widget" in out["text"]:
                problems.append(f"cell {i}: {out['text'].strip()[:200]!r}")
    for i, count in expected.items():
        # a closed widget's output stays, empty: no view, no height
        rendered = [o for o in shown[i] if o["views"] and o["height"] > 0]
        if len(rendered) != count:
            problems.append(
                f"cell {i}: {count} widget outputs stored, {len(rendered)} rendered "
                f"(shown: {[(o['text'][:80], o['views'], o['height']) for o in shown[i]]})"
            )
    return problems


@pytest.mark.parametrize("tutorial", TUTORIALS, ids=lambda p: p.stem)
def test_the_tutorial_runs_all_and_shows_its_widgets(
    lab: Lab, jupyter: LabPage, tutorial: Path
) -> None:
    notebook = nbformat.read(tutorial, as_version=4)
    expected = _widget_outputs(notebook)
    for cell in notebook.cells:  # what shows after the run is this run's, not the stored one
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    folder = Path(lab.root) / "tutorials"
    if not folder.exists():  # what the tutorials read (06: recordings/storm.jsonl)
        shutil.copytree(NOTEBOOKS, folder, ignore=shutil.ignore_patterns("*.ipynb"))
    nbformat.write(notebook, folder / tutorial.name)

    jupyter.open(f"tutorials/{tutorial.name}")
    jupyter.run_all(timeout=180)
    # a widget view appears when its model has reached the page, a moment after the cell
    deadline_ms, waited = 10_000, 0
    while True:
        shown = jupyter.panel.evaluate(_OUTPUTS)
        problems = _problems(shown, expected)
        if not problems or waited >= deadline_ms:
            break
        jupyter.page.wait_for_timeout(200)
        waited += 200
    views = jupyter.panel.locator(f".jp-OutputArea-output:has(:is({VIEW}))")
    last = views.last if views.count() else jupyter.panel.locator(".jp-CodeCell").last
    last.scroll_into_view_if_needed()
    jupyter.screenshot(f"tutorial-{tutorial.stem}")
    assert len(shown) == len([c for c in notebook.cells if c.cell_type == "code"])
    assert not problems, f"{tutorial.name} after Run All:\n" + "\n".join(problems)


WITH_WIDGETS = [t for t in TUTORIALS if _widget_outputs(nbformat.read(t, as_version=4))]


@pytest.fixture(scope="module")
def voila(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Voilà serving a copy of notebooks/ (the stored outputs are not what it shows: it runs
    each notebook when its page is opened)."""
    folder = tmp_path_factory.mktemp("voila") / "notebooks"
    shutil.copytree(NOTEBOOKS, folder)
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "voila",
        str(folder),
        "--no-browser",
        "--Voila.ip=127.0.0.1",
        f"--Voila.port={port}",
        "--Voila.port_retries=0",
    ]
    with serve(command, port, keep_log=ARTIFACTS / "voila-tutorials.log") as server:
        yield server


@pytest.mark.parametrize("tutorial", WITH_WIDGETS, ids=lambda p: p.stem)
def test_the_tutorial_shows_its_widgets_in_voila(voila: Server, page: Page, tutorial: Path) -> None:
    expected = sum(_widget_outputs(nbformat.read(tutorial, as_version=4)).values())
    page.goto(f"{voila.url}voila/render/{tutorial.name}")
    outputs = page.locator(".jp-OutputArea-output")
    views = outputs.filter(has=page.locator(VIEW))
    errors = outputs.filter(has_text="Error displaying widget")
    # Voilà runs every cell before it shows the widgets, then renders them at once
    deadline_ms, waited = 90_000, 0
    while views.count() + errors.count() < expected and waited < deadline_ms:
        page.wait_for_timeout(200)
        waited += 200
    if views.count():
        views.last.scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / f"voila-{tutorial.stem}.png")
    assert not errors.count(), f"{tutorial.name} in Voilà: {errors.all_inner_texts()}"
    assert views.count() == expected, (
        f"{tutorial.name} in Voilà: {views.count()} of {expected} widgets shown:\n"
        f"{voila.log_tail()}"
    )
