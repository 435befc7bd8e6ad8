"""Re-execute the tour notebooks from their text sources and store the outputs.

    python scripts/run_notebooks.py                      # every notebook in notebooks/
    python scripts/run_notebooks.py 04-job-store         # only those named

Each tour notebook is a jupytext pair: ``notebooks/NAME.md`` (MyST Markdown, the source you
edit and review) and ``notebooks/NAME.ipynb`` (the same cells with their outputs, which nbval
compares and the documentation renders). For each notebook named, this script

1. updates the ``.ipynb``'s cells from the ``.md`` (``jupytext --sync``, which keeps the
   cell ids, so a diff shows only what changed),
2. runs it top to bottom in a fresh kernel of this environment (nbclient, 120 s a cell),
3. drops widget views from the stored outputs (and the cells' timing metadata, which would
   change every line of the diff) and writes the ``.ipynb``.

Widget views go because nbval never compares them and a stored view of a closed panel
renders as an error in JupyterLab; the reader of the stored notebook sees the widget's text
form instead (the jobs table), and running the notebook shows the live panel. Outputs of
``# NBVAL_IGNORE_OUTPUT`` cells that only showed a widget go entirely.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def tidy(notebook: nbformat.NotebookNode) -> None:
    """Drop widget views (and the widget state) from a notebook's stored outputs."""
    notebook.metadata.pop("widgets", None)
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        ignored = any(line.strip() == "# NBVAL_IGNORE_OUTPUT"
                      for line in cell.source.splitlines())
        kept = []
        for output in cell.outputs:
            data = output.get("data")
            if data is not None and WIDGET_VIEW in data:
                if ignored:
                    continue
                del data[WIDGET_VIEW]
            kept.append(output)
        cell.outputs = kept


def run(source: Path) -> None:
    """Sync ``source``'s pair, execute the ``.ipynb`` in place and tidy its outputs."""
    subprocess.run([sys.executable, "-m", "jupytext", "--sync", str(source)], check=True)
    path = source.with_suffix(".ipynb")
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=120, kernel_name="python3", store_widget_state=False,
                   record_timing=False,
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    tidy(notebook)
    nbformat.write(notebook, path)
    print(f"executed {path.relative_to(NOTEBOOKS.parent)}")


def main(argv: list[str]) -> int:
    sources = sorted(NOTEBOOKS.glob("[0-9]*.md"))
    if argv:
        known = {p.stem: p for p in sources}
        unknown = [name for name in argv if Path(name).stem not in known]
        if unknown:
            print(f"no such notebook: {', '.join(unknown)}; known: {', '.join(known)}",
                  file=sys.stderr)
            return 2
        sources = [known[Path(name).stem] for name in argv]
    for source in sources:
        run(source)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
