"""Every tutorial run with Run All in a real JupyterLab: no cell raises, and every output that
shows a widget in the stored notebook shows that widget on the page once the run is over.

Run All sends every cell before the first has run, and Lab renders a widget output when its
model arrives: a later cell that closes a widget shown earlier leaves that output blank (and
Voilà, which renders after the run, says "Error displaying widget: model not found").
Screenshots: ``test-artifacts/tutorial-NAME.png``, at the last widget (or the end).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import nbformat
import pytest

from .lab import Lab, LabPage

pytestmark = pytest.mark.browser

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
TUTORIALS = sorted(NOTEBOOKS.glob("*.ipynb"))
WIDGET = "application/vnd.jupyter.widget-view+json"

# Each code cell's outputs as the page shows them: the text, how many widget views are inside,
# and whether the output takes any room. (Lab sets no MIME type on a widget's output element.)
_OUTPUTS = """panel => [...panel.querySelectorAll('.jp-CodeCell')].map(cell =>
  [...cell.querySelectorAll('.jp-OutputArea-output')].map(o => ({
    text: o.innerText,
    views: o.querySelectorAll('.jupyter-widgets').length,
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
    views = jupyter.panel.locator(".jp-OutputArea-output:has(.jupyter-widgets)")
    last = views.last if views.count() else jupyter.panel.locator(".jp-CodeCell").last
    last.scroll_into_view_if_needed()
    jupyter.screenshot(f"tutorial-{tutorial.stem}")
    assert len(shown) == len([c for c in notebook.cells if c.cell_type == "code"])
    assert not problems, f"{tutorial.name} after Run All:\n" + "\n".join(problems)
