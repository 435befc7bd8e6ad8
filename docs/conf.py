"""Sphinx configuration of the mashroom-jobs documentation.

Build it (offline, warnings as errors, as scripts/test.sh does):

    .venv/bin/sphinx-build -W --keep-going -b html docs docs/_build/html

The pages are MyST Markdown; the tour notebooks (copied from ``notebooks/`` into
``docs/tour/``) are rendered by myst-nb from their stored outputs, never executed here.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))  # benchmarks/: the tables' cells, as it prints them

from mashroom_jobs import __version__  # noqa: E402

# The tour pages are the notebooks of notebooks/, copied into docs/tour/ (git ignores it) at
# each build: Sphinx reads only its source folder, and a symlink would make MyST resolve
# the notebooks' links to each other outside it. Unchanged files are left alone, so an
# incremental build does not read them again.
TOUR = HERE / "tour"
TOUR.mkdir(exist_ok=True)
_notebooks = {p.name: p for p in (HERE.parent / "notebooks").glob("[0-9]*.ipynb")}
for _stale in set(p.name for p in TOUR.glob("*.ipynb")) - set(_notebooks):
    (TOUR / _stale).unlink()
for _name, _path in _notebooks.items():
    _copy = TOUR / _name
    if not _copy.exists() or _copy.read_bytes() != _path.read_bytes():
        shutil.copy2(_path, _copy)

project = "mashroom-jobs"
author = "the mashroom-jobs authors"
copyright = "2026, the mashroom-jobs authors"
version = release = __version__

extensions = [
    "myst_nb",  # MyST Markdown pages and the notebooks (it loads myst_parser)
    "sphinx.ext.autodoc",
    "numpydoc",  # the docstrings are NumPy style
    "benchmark_table",  # docs/_ext: the performance page's tables from its results file
    "traitlets_config",  # docs/_ext: the service's settings from their help=
]

exclude_patterns = [
    "_build",
]
# a broken link between pages, or to an API name, fails the build (-W)
nitpicky = True
# names from outside the package: no intersphinx (the build is offline), so these are
# left unlinked instead of failing the build; every mashroom_jobs name must resolve
nitpick_ignore_regex = [
    (r"py:.*", r"(datetime|concurrent|collections|typing|zoneinfo|threading|asyncio|logging"
               r"|pathlib|os|importlib|traitlets|ipywidgets|IPython|distributed|types"
               r"|contextlib|argparse|sqlite3|builtins|abc|enum)(\..*)?"),
    (r"py:.*", r"(str|int|float|bool|bytes|object|None|Any|Callable|Iterable|Iterator"
               r"|Mapping|Sequence|Future|Executor|tzinfo|T|F|optional|callable|type"
               r"|Exception|BaseException|ValueError|TypeError|list|dict|tuple|set"
               r"|Coroutine|Awaitable|Logger|InteractiveShell|PathLike|EntryPoint"
               r"|HasTraits|Configurable|Bunch|TraitType|Widget|VBox|Button|Path"
               r"|function|sequence of str|iterable|mapping|default.*|ZoneInfo|timedelta"
               r"|datetime|date|Event|Thread|Lock)"),
]

nitpick_ignore = [
    # cross-references in docstrings of the modules being reworked this round, to names the
    # reference does not document (a CronSchedule attribute, a core constant, a helper)
    ("py:attr", "name"),
    ("py:data", "EARLIEST_START"),
    ("py:func", "local_store_path"),
]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # the notebooks' stored outputs, as nbval checks them
nb_merge_streams = True

autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the docstrings give the types
autodoc_default_options = {"members": True, "show-inheritance": False}
numpydoc_show_class_members = False  # autodoc lists the members
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False  # parameter types are prose ("str or None"), not links

html_theme = "pydata_sphinx_theme"
html_title = f"mashroom-jobs {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_static_path: list[str] = []
