"""Sphinx extension for ipyvirt's own pages: the conformance kit's clause table, generated
from ``ipyvirt.testing.CLAUSES`` so it cannot drift from the kit, and a check that the API
reference documents every public name."""

from __future__ import annotations

import importlib
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util import inspect, logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

#: the modules whose ``__all__`` is the public API, each documented in full
PUBLIC_MODULES = ("ipyvirt", "ipyvirt.widgets", "ipyvirt.explore", "ipyvirt.testing")


class ConformanceClauses(SphinxDirective):
    """``{conformance-clauses}``: one row per clause: its name, its rule, the modes it runs in."""

    def run(self) -> list[nodes.Node]:
        from ipyvirt.testing import CLAUSES

        rows = [(nodes.literal(text=c.name), c.text, ", ".join(c.modes)) for c in CLAUSES]
        table = nodes.table(classes=["conformance-clauses"])
        group = nodes.tgroup(cols=3)
        table += group
        group.extend(nodes.colspec(colwidth=w) for w in (25, 60, 15))
        group += nodes.thead("", self._row((nodes.Text("clause"), "rule", "modes")))
        group += nodes.tbody("", *(self._row(r) for r in rows))
        return [table]

    @staticmethod
    def _row(cells: tuple[nodes.Node | str, ...]) -> nodes.row:
        row = nodes.row()
        for cell in cells:
            content = nodes.Text(cell) if isinstance(cell, str) else cell
            row += nodes.entry("", nodes.paragraph("", "", content))
        return row


class _DefaultFactory:
    def __repr__(self) -> str:
        return "..."


_DEFAULT_FACTORY = _DefaultFactory()


def own_init_signature(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, signature: str, ret: str
) -> tuple[str, str] | None:
    """An ipyvirt class's signature from its own ``__init__``, less private parameters
    (``_name``): for a widget autodoc would show traitlets' ``__new__(*args, **kwargs)``."""
    init = getattr(obj, "__init__", None)
    if what != "class" or not getattr(init, "__module__", "").startswith("ipyvirt."):
        return None
    sig = inspect.signature(init, bound_method=True)
    public = [
        # a dataclass field's default_factory shows as <factory>, which is no Python
        p.replace(default=_DEFAULT_FACTORY) if repr(p.default) == "<factory>" else p
        for p in sig.parameters.values()
        if not p.name.startswith("_")
    ]
    sig = sig.replace(parameters=public)
    text = inspect.stringify_signature(
        sig, show_return_annotation=False, unqualified_typehints=True
    )
    return text, ret


def check_api_documented(app: Sphinx, env: BuildEnvironment) -> None:
    """Warn (an error under -W) for every public name the API reference leaves out."""
    documented = env.get_domain("py").objects  # type: ignore[attr-defined]
    for module in PUBLIC_MODULES:
        for name in importlib.import_module(module).__all__:
            if f"{module}.{name}" not in documented:
                logger.warning(f"{module}.{name} is public (in __all__) but not in docs/api.md")


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("conformance-clauses", ConformanceClauses)
    app.connect("autodoc-process-signature", own_init_signature)
    app.connect("env-check-consistency", check_api_documented)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
