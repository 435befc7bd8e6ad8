"""Where a big batch's lateness goes: every callback start of N every-second jobs, second by
second, with the garbage collections that ran meanwhile.

    python benchmarks/batch_starts.py [N] [--no-gc] [--freeze] [--max-workers K]

For each whole second: how many runs started, and the first, median, p99 and last start
after the second (ms); then each full collection (its duration, and when it started within
its second) and the count of young ones.  ``--no-gc`` disables the collector, ``--freeze``
calls ``gc.freeze()`` after scheduling (see the README's Performance section).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mashroom_jobs import BackgroundJobService


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=6.5)
    parser.add_argument("--no-gc", action="store_true")
    parser.add_argument("--freeze", action="store_true")
    parser.add_argument("--max-workers", type=int, default=8)
    args = parser.parse_args()

    runs: list[tuple[int, float]] = []
    collections: list[tuple[int, float, float]] = []  # generation, ms, when (epoch s)
    started = [0.0]

    def on_collection(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            collections.append((info["generation"], (time.perf_counter() - started[0]) * 1e3,
                                time.time()))

    def job(index: int) -> Any:
        def callback() -> None:
            runs.append((index, time.time()))
        return callback

    service = BackgroundJobService(timezone="UTC", max_workers=args.max_workers)
    gc.callbacks.append(on_collection)
    if args.no_gc:
        gc.disable()
    for index in range(args.n):
        service.schedule_job(f"job-{index}", "* * * * * *", job(index))
    if args.freeze:
        gc.collect()
        gc.freeze()
    time.sleep(args.seconds)
    service.shutdown(wait=False)

    by_second: dict[int, list[float]] = {}
    for _, when in runs:
        by_second.setdefault(int(when), []).append((when - int(when)) * 1e3)
    print("second  runs  first  p50  p99  last (ms after the second)")
    for second in sorted(by_second)[1:-1]:  # the first and last seconds are partial
        starts = sorted(by_second[second])
        print(f"{second % 100:6}  {len(starts):4}  {starts[0]:5.1f}  "
              f"{starts[len(starts) // 2]:5.1f}  {starts[int(len(starts) * 0.99)]:5.1f}  "
              f"{starts[-1]:5.1f}")
    full = [(ms, when) for generation, ms, when in collections if generation == 2]
    print("full collections (ms, at second.fraction):",
          ", ".join(f"{ms:.1f} at {when % 100:.3f}" for ms, when in full) or "none")
    print("young collections:", sum(1 for generation, _, _ in collections if generation < 2))


if __name__ == "__main__":
    main()
