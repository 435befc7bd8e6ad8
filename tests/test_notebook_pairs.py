"""Each tour notebook is a jupytext pair whose executed ``.ipynb`` holds what its source says.

nbval compares the stored outputs of the ``.ipynb``; the ``.md`` is what people edit and
review. A pair out of sync would test cells nobody reads, and an ``.ipynb`` saved without
running every cell would let nbval skip the unexecuted ones silently.
"""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("[0-9]*.md"))
FIX = "edit the .md, then run: python scripts/run_notebooks.py {name}"


def test_every_tour_notebook_has_a_text_source_and_every_source_a_notebook() -> None:
    assert len(SOURCES) >= 5
    assert {p.stem for p in NOTEBOOKS.glob("*.ipynb")} == {p.stem for p in SOURCES}


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_the_ipynb_holds_the_cells_of_its_text_source(source: Path) -> None:
    text = jupytext.read(source)
    stored = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    assert stored.metadata["jupytext"]["formats"] == "ipynb,md:myst"
    assert text.metadata["jupytext"]["formats"] == "ipynb,md:myst"
    expected = [(cell.cell_type, cell.source) for cell in text.cells]
    actual = [(cell.cell_type, cell.source) for cell in stored.cells]
    assert actual == expected, FIX.format(name=source.stem)


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_the_ipynb_was_executed_top_to_bottom_in_one_run(source: Path) -> None:
    stored = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    counts = [cell.execution_count for cell in stored.cells if cell.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1)), FIX.format(name=source.stem)
