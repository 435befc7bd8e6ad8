"""The scheduling core is free of Jupyter: it imports without IPython or ipywidgets."""

from __future__ import annotations

import pathlib
import subprocess
import sys


def test_the_core_and_the_package_import_without_jupyter_modules() -> None:
    code = (
        "import sys, mashroom_jobs.core, mashroom_jobs;"
        "from mashroom_jobs import BackgroundJobService;"
        "s = BackgroundJobService(); s.schedule_job('x', '* * * * *', print); s.shutdown();"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('IPython', 'ipywidgets', 'ipykernel', 'comm', 'mashroom_jobs.panel'));"
        "print(bad)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.strip() == "[]"


def test_the_core_modules_import_neither_traitlets_nor_jupyter() -> None:
    core = pathlib.Path(__file__).parents[1] / "mashroom_jobs" / "core"
    for path in core.glob("*.py"):
        text = path.read_text()
        for banned in ("import traitlets", "from traitlets", "IPython", "ipywidgets"):
            assert banned not in text, f"{path.name} mentions {banned}"
