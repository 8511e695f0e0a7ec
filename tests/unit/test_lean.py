"""The table's module and style made small (widgets/lean.py): what goes, what must stay."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ipyvirt import widgets
from ipyvirt.widgets.lean import lean


def test_comments_indentation_and_spaces_go_strings_stay() -> None:
    source = """
    // a comment line
    /** a block comment
     * over lines */
    function f(a, b) {  // a trailing comment
      const x = a === "it's" ? "two  spaces" : 'one';
      return `${a} of ${b === 1 ? "one" : "many"}  kept`;
    }
    const u = "http://x";
    """
    assert lean(source) == "\n".join(
        [
            "function f(a,b){",
            "const x=a===\"it's\"?'two  spaces':'one';",
            'return`${a} of ${b === 1 ? "one" : "many"}  kept`;',
            "}",
            "const u='http://x';",
        ]
    )


def test_words_keep_their_space() -> None:
    assert lean("if (x instanceof Node) return typeof y;") == (
        "if(x instanceof Node)return typeof y;"
    )


@pytest.mark.parametrize(
    "line",
    ['const s = "goes on', "const t = `${`inner`}`;"],
    ids=["an unended string", "a template inside a template"],
)
def test_what_it_cannot_make_small_it_refuses(line: str) -> None:
    with pytest.raises(ValueError):
        lean(line)


def test_css_keeps_the_descendant_space() -> None:
    css = "/* c */\n.a .b > td, .c:hover { color: var(--x, #fff); margin: 0 2px; }\n"
    assert lean(css, css=True) == ".a .b>td,.c:hover{color:var(--x,#fff);margin:0 2px;}"


@pytest.mark.parametrize(
    ("widget", "module_attr"),
    [
        ("DomainTable", "_esm"),
        ("DomainTable", "_THUMBS_ESM"),
        ("FleetTable", "_esm"),
        ("FleetHealth", "_esm"),
    ],
)
def test_the_shipped_modules_made_lean_still_parse(
    widget: str, module_attr: str, tmp_path: Path
) -> None:
    """What the browser gets is valid JavaScript: node parses each lean module (the browser
    tests then run them)."""
    node = shutil.which("node")
    assert node is not None, "node is missing: scripts/setup installs it"
    module = tmp_path / f"{widget}.mjs"
    module.write_text(getattr(getattr(widgets, widget), module_attr))
    checked = subprocess.run([node, "--check", str(module)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
