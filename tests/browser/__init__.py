"""Tests in a real JupyterLab, in a real Chromium (see conftest.py and lab.py)."""
