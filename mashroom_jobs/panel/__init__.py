"""The jobs panel: a live ipywidgets view of a BackgroundJobService.

Stock ipywidgets 8 only, so it renders wherever widgets do (JupyterLab,
Notebook 7, VS Code, Voila, Colab).  :mod:`.format` says what a job looks like
as text (pure, testable without widgets), :mod:`.rows` is the reusable row,
:mod:`.form` the add-job form, :mod:`.view` the panel and its flush loop,
:mod:`.tracking` what changed since its last flush, :mod:`.paging` its filter and
pages, and :mod:`.runs` the recent-runs table of the dashboard.
"""

from .runs import RecentRuns
from .view import JobsPanel, close_panels, display_panel

__all__ = ["JobsPanel", "RecentRuns", "close_panels", "display_panel"]
