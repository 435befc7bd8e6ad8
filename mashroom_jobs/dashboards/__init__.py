"""Notebooks that ship with the package, for ``mashroom-jobs dashboard``.

``jobs.ipynb`` shows the kernel's jobs panel and its recent runs; Voila renders it as a
page without code.  It is package data (inside the wheel), so the command works from an
installed package as from a checkout.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["JOBS_DASHBOARD"]

#: the jobs dashboard notebook
JOBS_DASHBOARD = Path(__file__).with_name("jobs.ipynb")
