"""What ipyvirt's widgets show, as plain classes: no ipywidgets, no kernel, plain data out.

Each model holds one widget's state, exposes all of it as plain records (``snapshot()``
style methods returning lists of dicts) and tells a listener what changed. The widgets in
:mod:`ipyvirt.widgets` are views over them.
"""

from __future__ import annotations
