"""What a cron expression costs to set up: parsing one, and next fire times per shape.

``python -m benchmarks.cron_costs [--rounds N]`` prints microseconds per call, the minimum
and the median of N rounds:

* parse: ``CronSchedule`` of 2,000 expressions not seen before (their field texts are);
* first next time: ``next_fire_time`` right after, what ``schedule_job`` pays per job;
* per shape: ``next_fire_time`` at 1,000 instants, none answered by the memo or the
  remembered span, in UTC and in Europe/Berlin.

Case 3 of ``python -m benchmarks`` measures the whole of ``schedule_job``; this splits out
the cron part of it. To compare with another checkout, run this file with that checkout
first on the path: ``PYTHONPATH=../old python benchmarks/cron_costs.py`` (an expression
the old code does not know shows ``n/a``).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from mashroom_jobs.core.cron import CronSchedule

UTC = timezone.utc
SHAPES = ["* * * * * *", "*/15 * * * *", "30 2 * * *", "0 9 * * Mon-Fri", "0 0 29 2 *",
          "0 9 1-7 * */7", "0 0 15 * 1", "0 0 L * *", "0 0 15W * *", "0 0 * * MON#2",
          "0 0 * * 5L"]


def _rounds(measure: Callable[[int], float], rounds: int) -> tuple[float, float]:
    results = []
    for r in range(rounds):
        gc.collect()
        gc.disable()
        try:
            results.append(measure(r))
        finally:
            gc.enable()
    return min(results), statistics.median(results)


def setup(rounds: int, n: int = 2000) -> tuple[tuple[float, float], tuple[float, float]]:
    """µs per CronSchedule of a new expression, and per first next_fire_time of it."""
    after = datetime(2026, 11, 28, 12, 0, 0, 123456, tzinfo=UTC)
    made: dict[int, list[CronSchedule]] = {}

    def parse(r: int) -> float:
        texts = [f"{i % 60} {(7 * r + 1 + i // 60) % 60} {(i // 1200 + r) % 24} * * *"
                 for i in range(n)]
        started = time.perf_counter()
        made[r] = [CronSchedule(text, "UTC") for text in texts]
        return (time.perf_counter() - started) / n * 1e6

    def first(r: int) -> float:
        started = time.perf_counter()
        for schedule in made[r]:
            schedule.next_fire_time(after)
        return (time.perf_counter() - started) / n * 1e6

    return _rounds(parse, rounds), _rounds(first, rounds)


def per_shape(expression: str, zone: str, rounds: int, n: int = 1000
              ) -> tuple[float, float] | None:
    """µs per next_fire_time that neither the memo nor the span answers (None: invalid)."""
    try:
        schedule = CronSchedule(expression, zone)
    except ValueError:
        return None
    start = datetime(2026, 3, 1, 0, 0, 30, tzinfo=UTC)

    def measure(r: int) -> float:
        times = [start + timedelta(seconds=997 * i + r) for i in range(n)]
        started = time.perf_counter()
        for when in times:
            schedule._span = None
            schedule._memo.clear()
            schedule.next_fire_time(when)
        return (time.perf_counter() - started) / n * 1e6

    return _rounds(measure, rounds)


def main() -> None:
    """Print the costs."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    rounds = parser.parse_args().rounds
    parse, first = setup(rounds)
    print("µs per call (min / median)")
    print(f"{'parse a new expression':50s} {parse[0]:6.1f} / {parse[1]:6.1f}")
    print(f"{'its first next_fire_time':50s} {first[0]:6.1f} / {first[1]:6.1f}")
    for zone in ("UTC", "Europe/Berlin"):
        for expression in SHAPES:
            costs = per_shape(expression, zone, rounds)
            label = f"next_fire_time {expression!r} {zone}"
            print(f"{label:50s} " + ("n/a" if costs is None else
                                     f"{costs[0]:6.1f} / {costs[1]:6.1f}"))


if __name__ == "__main__":
    main()
