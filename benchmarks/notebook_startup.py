"""The start-up of a notebook run: from the run's start to its first cell, ours against
papermill's, on the same notebook, in one run (issue 22).

``python -m benchmarks.notebook_startup [--rounds N] [--json PATH]``

Three ways run the same small notebook, alternating, ``--rounds`` times each:

* **mashroom-jobs**: a service (already running, as in a kernel or ``mashroom-jobs
  run``) runs a ``Notebook`` job now (``job.invoke_now()``): the clock starts at that call;
* **papermill CLI**: ``papermill in.ipynb out.ipynb`` from the command line: the clock
  starts when the command is launched (its interpreter and imports included, as a user
  or cron pays them);
* **papermill API**: ``papermill.execute_notebook`` in this (warm) process: the clock
  starts at the call.

The notebook's first cell appends ``time.time()`` to a file: the first cell's start, on
the same clock.  Figures are medians (and the spread) in milliseconds; the whole run's
time is given too.  Needs the bench extra (papermill).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

FIRST_CELL = ("import os, time\n"
              "with open(os.environ['MASHROOM_BENCH_FIRST_CELL'], 'a') as f:\n"
              "    f.write(f'{time.time()}\\n')")


def make_notebook(path: Path) -> None:
    import nbformat

    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(FIRST_CELL),
               nbformat.v4.new_code_cell("x = sum(range(1000))\nprint(x)")],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}})
    nbformat.write(notebook, path)


def first_cell(marks: Path) -> float:
    return float(marks.read_text().split()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    import papermill  # (imported now: the API's figures are those of a warm process)

    from mashroom_jobs import BackgroundJobService, Notebook

    folder = Path(tempfile.mkdtemp(prefix="mashroom-bench-notebook-"))
    notebook = folder / "bench.ipynb"
    make_notebook(notebook)
    marks = folder / "first-cell.txt"
    os.environ["MASHROOM_BENCH_FIRST_CELL"] = str(marks)
    papermill_cli = str(Path(sys.executable).with_name("papermill"))
    service = BackgroundJobService(timezone="UTC")
    job = service.schedule_job("bench", "@yearly", Notebook(notebook))

    def ours() -> tuple[float, float]:
        start = time.time()
        record = job.invoke_now().result(120)
        end = time.time()
        assert record.success, record.error_message
        return first_cell(marks) - start, end - start

    def cli() -> tuple[float, float]:
        start = time.time()
        subprocess.run([papermill_cli, str(notebook), str(folder / "out-cli.ipynb"),
                        "--no-progress-bar"], check=True, capture_output=True)
        end = time.time()
        return first_cell(marks) - start, end - start

    def api() -> tuple[float, float]:
        start = time.time()
        papermill.execute_notebook(str(notebook), str(folder / "out-api.ipynb"),
                                   progress_bar=False)
        end = time.time()
        return first_cell(marks) - start, end - start

    ways = {"mashroom-jobs (Notebook job)": ours, "papermill CLI": cli,
            "papermill API (in-process)": api}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
    try:
        for _ in range(args.rounds):
            for name, way in ways.items():
                results[name].append(way())
    finally:
        service.shutdown(timeout=10)
    summary: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
                   f"{platform.python_version()}",
        "rounds": args.rounds, "ways": {}}
    print(f"Start of a run to its first cell, and the whole run, median of {args.rounds} "
          f"rounds (min-max), ms:")
    for name, figures in results.items():
        first = [f * 1000 for f, _ in figures]
        whole = [w * 1000 for _, w in figures]
        summary["ways"][name] = {
            "first_cell_ms": round(statistics.median(first), 1),
            "first_cell_range_ms": [round(min(first), 1), round(max(first), 1)],
            "whole_run_ms": round(statistics.median(whole), 1)}
        print(f"  {name:32} first cell {statistics.median(first):7.0f} "
              f"({min(first):.0f}-{max(first):.0f})   whole run "
              f"{statistics.median(whole):7.0f}")
    if args.json is not None:
        args.json.write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
