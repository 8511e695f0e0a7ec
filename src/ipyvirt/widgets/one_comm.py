"""A :class:`~ipyvirt.widgets.view.View` with nothing but itself in the browser: one comm.

An ipywidgets ``DOMWidget`` (anywidget's base) makes a ``Layout`` widget for its ``layout``
trait when it is first synced, a second comm for every widget shown. Ours style themselves
in their own CSS and never use it; JupyterLab's and Voilà's widget managers draw a view with
no layout (``setLayout`` does nothing for ``null``).
"""

from __future__ import annotations

from typing import Any

import traitlets
from ipywidgets import Layout, widget_serialization

__all__ = ["no_layout"]


def no_layout() -> Any:
    """A ``layout`` trait that stays ``None``: put ``layout = no_layout()`` in a View's class
    body. (A trait object belongs to one class: a new one for each.)"""
    return traitlets.Instance(Layout, allow_none=True).tag(sync=True, **widget_serialization)
