"""The jobs panel: a live ipywidgets view of a BackgroundJobService.

Stock ipywidgets 8 only, so it renders wherever widgets do (JupyterLab,
Notebook 7, VS Code, Voila, Colab).  :mod:`.format` says what a job looks like
as text (pure, testable without widgets), :mod:`.rows` is the reusable row,
:mod:`.form` the add-job form, and :mod:`.view` the panel and its flush loop.
"""

from .view import JobsPanel, close_panels, display_panel

__all__ = ["JobsPanel", "close_panels", "display_panel"]
