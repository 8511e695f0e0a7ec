"""The first tutorial run with Run All in a real JupyterLab: the events a cell causes are
there when the next cell runs, though Lab sends every cell's execute request at once."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from .lab import Lab, LabPage

pytestmark = pytest.mark.browser

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def _stream_text(cell: nbformat.NotebookNode) -> str:
    return "".join("".join(o["text"]) for o in cell.outputs if o["output_type"] == "stream").strip()


@pytest.mark.parametrize("attempt", range(3))
def test_getting_started_with_run_all_shows_the_events_between_cells(
    lab: Lab, jupyter: LabPage, attempt: int
) -> None:
    notebook = nbformat.read(NOTEBOOKS / "01-getting-started.ipynb", as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    # the cells that print what the callbacks got: nothing yet at the end of the cells that
    # cause events, all of them in the cells after ("... and see it arrive between cells",
    # "Proof that it is between cells"), and during a cell that awaits
    checked = {
        i: _stream_text(c)
        for i, c in enumerate(code)
        if any(
            says in _stream_text(c)
            for says in ("at the end of the cell", "MainThread", "the worker is done")
        )
    }
    assert len(checked) == 5, f"the tutorial changed: update this test ({checked})"
    for cell in notebook.cells:  # what shows after the run is this run's, not the stored one
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    path = Path(lab.root) / "run-all" / f"01-getting-started-{attempt}.ipynb"
    path.parent.mkdir(exist_ok=True)
    nbformat.write(notebook, path)

    jupyter.open(path.relative_to(lab.root).as_posix())
    jupyter.run_all()
    shown = jupyter.cell_outputs()
    jupyter.output("'between cells'").first.scroll_into_view_if_needed()
    jupyter.screenshot(f"run-all-getting-started-{attempt}")
    # Lab shows a cell's consecutive stream outputs as one
    assert {i: "\n".join(shown[i]) for i in checked} == checked
