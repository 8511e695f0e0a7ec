"""Sphinx configuration of ipyvirt's documentation site: build it with scripts/docs."""

from __future__ import annotations

import sys
from pathlib import Path

import ipyvirt

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "ipyvirt"
author = "the ipyvirt authors"
copyright = "the ipyvirt authors"
version = release = ipyvirt.__version__

extensions = ["myst_nb", "sphinx.ext.autodoc", "ipyvirt_docs"]
# tutorials/ links to ../notebooks: the notebooks are rendered where they live
exclude_patterns = ["_build"]

# nbval executes the notebooks and compares their outputs (tests/notebooks); the site shows
# the outputs stored in them and never runs a kernel
nb_execution_mode = "off"
# the notebooks keep no widget state (they are refreshed with store_widget_state=False), so a
# widget view would render empty: show each widget's text form, its repr, instead
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None)]

autodoc_member_order = "bysource"
autodoc_preserve_defaults = True

nitpicky = True
# types from outside ipyvirt: with no network at build time there is no intersphinx to
# resolve them; and ipyvirt's private helpers (_name), which no page documents
nitpick_ignore_regex = [
    ("py:.*", r"(asyncio|collections|concurrent\.futures|pathlib|re|threading|typing)\..*"),
    ("py:.*", r"pandas\..*"),
    # type variables of generic classes (OffLoop[R]) are no documented objects
    ("py:class", r"ipyvirt\.(models|explore)\.\w+\.[A-Z]"),
    ("py:.*", r"libvirt\..*"),
    ("py:.*", r"ipywidgets\..*|traitlets\..*|IPython\..*"),
    ("py:.*", r"ipyvirt\.(.+\.)?_\w+"),
]

html_theme = "furo"
html_title = f"ipyvirt {release}"
html_static_path = ["_static"]
html_css_files = ["ipyvirt.css"]
