"""Files runs keep (a notebook job's executed notebooks), and their removal with the runs
that name them.

Executed notebooks live in a folder of folders, one per job: by default
``<store's folder>/<store's name>-notebooks/<job>/``, beside the store
(:func:`notebooks_folder`).  Such a folder holds a marker file
(:data:`MARKER`); when the store prunes a run, it deletes the file the run kept (its
``artifact``) only when it lies in a job folder of a marked folder, so a path that a job
reported by hand (``report_artifact("/home/me/data.csv")``) is never deleted.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable

__all__ = ["MARKER", "mark_folder", "notebooks_folder", "remove_artifacts"]

log = logging.getLogger("mashroom_jobs.store")

#: the file that marks a folder of executed notebooks as the store's to prune
MARKER = ".mashroom-jobs-notebooks"
_MARKER_TEXT = ("Executed notebooks of mashroom-jobs notebook jobs, one folder per job.\n"
                "Each is deleted when the job store prunes the run that made it.\n")


def notebooks_folder(store_path: str) -> str:
    """Where the executed notebooks of the store at ``store_path`` are kept by default:
    ``/data/store.sqlite`` -> ``/data/store-notebooks``."""
    folder, name = os.path.split(os.path.abspath(store_path))
    stem = os.path.splitext(name)[0] or name
    return os.path.join(folder, f"{stem}-notebooks")


def mark_folder(folder: str) -> None:
    """Make ``folder`` (and its parents) and mark it as a folder of executed notebooks."""
    os.makedirs(folder, exist_ok=True)
    marker = os.path.join(folder, MARKER)
    if not os.path.exists(marker):
        try:
            with open(marker, "x", encoding="utf-8") as file:
                file.write(_MARKER_TEXT)
        except FileExistsError:  # another process marked it meanwhile
            pass


def remove_artifacts(paths: Iterable[str | None]) -> int:
    """Delete the files of pruned runs that lie in a job folder of a marked folder (see
    the module docstring); a job folder left empty goes too.  Returns how many files were
    deleted.  A file already gone, or that cannot be deleted, is skipped (and logged)."""
    deleted = 0
    for path in paths:
        if not path or not os.path.isabs(path):
            continue
        job_folder = os.path.dirname(path)
        if not os.path.isfile(os.path.join(os.path.dirname(job_folder), MARKER)):
            continue
        try:
            os.remove(path)
            deleted += 1
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("mashroom-jobs: could not delete %s, kept by a pruned run: %s",
                        path, exc)
            continue
        try:
            os.rmdir(job_folder)  # only when empty
        except OSError:
            pass
    return deleted
