"""The design the ``table`` branch builds, at its smallest: one anywidget model that holds
every row in the kernel and sends the browser only the page it shows, as JSON rows.

Imported in the benchmark's kernels by ``benchmarks/grids.py`` (not part of ipyvirt). Sort,
filter, page and selection are requests the view sends (``model.send``); the kernel answers by
setting ``rows`` (the shown page, ``page_size`` rows at most) and ``total``. A change to rows
that are not on the page sends nothing.

:class:`PatchedPageView` is a variant (not what the ``table`` branch builds): when the rows
on the page are the same rows in the same order, it sends only those that changed.
"""

from __future__ import annotations

from typing import Any

import anywidget
import traitlets

COLUMNS = ["name", "state", "reason", "vcpus", "memory"]

ESM = """
function render({ model, el }) {
  const filter = document.createElement("input");
  filter.placeholder = "filter";
  filter.oninput = () => model.send({ do: "filter", text: filter.value });
  const table = document.createElement("table");
  const head = table.createTHead().insertRow();
  head.insertCell().textContent = "";
  for (const c of model.get("columns")) {
    const th = document.createElement("th");
    th.textContent = c;
    th.onclick = () => model.send({ do: "sort", column: c });
    head.appendChild(th);
  }
  const body = table.createTBody();
  const pager = document.createElement("div");
  const prev = document.createElement("button");
  prev.textContent = "<";
  prev.onclick = () => model.send({ do: "page", page: model.get("page") - 1 });
  const next = document.createElement("button");
  next.textContent = ">";
  next.onclick = () => model.send({ do: "page", page: model.get("page") + 1 });
  const label = document.createElement("span");
  pager.append(prev, label, next);
  const draw = () => {
    const columns = model.get("columns");
    const selected = new Set(model.get("selected"));
    body.replaceChildren();
    for (const row of model.get("rows")) {
      const tr = body.insertRow();
      const box = document.createElement("input");
      box.type = "checkbox";
      box.checked = selected.has(row.name);
      box.onchange = () => model.send({ do: "select", name: row.name, on: box.checked });
      tr.insertCell().appendChild(box);
      for (const c of columns) tr.insertCell().textContent = String(row[c]);
    }
    const first = model.get("page") * model.get("page_size");
    const last = first + model.get("rows").length;
    label.textContent = ` ${first + 1}-${last} of ${model.get("total")} `;
  };
  // a patch: [[index on the page, row], ...] for rows that changed in place
  model.on("msg:custom", (msg) => {
    const rows = model.get("rows").slice();
    for (const [i, row] of msg.patch ?? []) rows[i] = row;
    model.set("rows", rows);
  });
  model.on("change:rows", draw);
  model.on("change:selected", draw);
  draw();
  el.append(filter, table, pager);
}
export default { render };
"""


class PageView(anywidget.AnyWidget):
    """Every row in the kernel; the shown page in the browser."""

    #: send rows that changed in place as a patch, not the whole page
    patches = False

    _esm = ESM
    columns = traitlets.List(COLUMNS).tag(sync=True)
    #: the shown page: at most page_size rows, as {column: value}
    rows: traitlets.List[dict[str, Any]] = traitlets.List().tag(sync=True)
    total = traitlets.Int(0).tag(sync=True)
    page = traitlets.Int(0).tag(sync=True)
    page_size = traitlets.Int(50).tag(sync=True)
    selected: traitlets.List[str] = traitlets.List().tag(sync=True)

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        super().__init__()
        self._all = {r["name"]: r for r in rows}
        self._sort = "name"
        self._filter = ""
        self.on_msg(self._request)
        self._show()

    def update(self, changed: list[dict[str, Any]]) -> None:
        """Rows changed (each a whole row, by name): redraw the page if it shows any."""
        for row in changed:
            self._all[row["name"]] = row
        self._show()

    def _show(self) -> None:
        view = [r for r in self._all.values() if self._filter in r["name"]]
        view.sort(key=lambda r: (r[self._sort], r["name"]))
        last = max(0, (len(view) - 1) // self.page_size)
        page = min(max(self.page, 0), last)
        shown = view[page * self.page_size : (page + 1) * self.page_size]
        old: list[dict[str, Any]] = self.rows
        with self.hold_sync():
            self.page = page
            self.total = len(view)
            if shown == old:  # equal pages send nothing
                return
            new = [dict(r) for r in shown]
            if self.patches and [r["name"] for r in old] == [r["name"] for r in new]:
                patch = [[i, r] for i, (r, o) in enumerate(zip(new, old, strict=True)) if r != o]
                # the view patches its copy; the kernel's copy changes without a sync
                with self._lock_property(rows=new):
                    self.rows = new
                self.send({"patch": patch})
            else:
                self.rows = new

    def _request(self, _widget: Any, content: Any, _buffers: list[bytes]) -> None:
        do = content.get("do") if isinstance(content, dict) else None
        if do == "sort" and content.get("column") in COLUMNS:
            self._sort = content["column"]
        elif do == "filter":
            self._filter = str(content.get("text", ""))
        elif do == "page":
            self.page = int(content.get("page", 0))
        elif do == "select":
            names = set(self.selected)
            (names.add if content.get("on") else names.discard)(content.get("name"))
            self.selected = sorted(names)
            return
        else:
            return
        self._show()


class PatchedPageView(PageView):
    """:class:`PageView` sending rows changed in place as patches."""

    patches = True
