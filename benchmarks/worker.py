"""One measurement in a fresh process: ``python -m benchmarks.worker SPEC_JSON OUT_PATH``.

``SPEC_JSON`` is ``{"case": ..., "scheduler": ..., "params": {...}}``; the result
dict is written as JSON to ``OUT_PATH``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from . import cases
from .adapters import ADAPTERS


def run(spec: dict[str, Any]) -> dict[str, Any]:
    case, params = spec["case"], spec["params"]
    if case == "baseline":
        return cases.main_thread_baseline(**params)
    if case == "panel":
        from .panel_case import panel_cost

        return panel_cost(**params)
    if case == "history":
        from .store_case import history_cost

        return history_cost(**params)
    if case == "dask":
        from .dask_case import dask_vs_raw

        return dask_vs_raw(**params)
    adapter = ADAPTERS[spec["scheduler"]]()
    function = {
        "lateness": cases.lateness,
        "setup": cases.setup_cost,
        "idle": cases.idle,
        "memory": cases.memory,
    }[case]
    return function(adapter, **params)  # type: ignore[operator]


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    result = run(spec)
    with open(argv[1], "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
