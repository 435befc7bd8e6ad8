"""Case 6: what a JobsPanel costs. mashroom-jobs only: APScheduler has no panel.

Widget models are counted in ipywidgets' registry of live widgets; front-end
messages by wrapping ``Widget._send`` (every state update a widget sends to its
comm goes through it; there is no kernel here, so nothing leaves the process).
"""

from __future__ import annotations

import math
import time
from typing import Any

from .cases import EVERY_SECOND, far_minute, percentile, sleep_until


def panel_cost(n: int, firing: int, window: int, panel: bool = True) -> dict[str, Any]:
    """A panel over ``n`` jobs, the first ``firing`` of them (the visible page among
    them) on ``* * * * * *``, the others hourly and idle.  ``panel=False``: the same
    without a panel, for comparison."""
    try:
        from ipywidgets import Widget
        from ipywidgets.widgets.widget import _instances

        from mashroom_jobs.panel import JobsPanel
    except ImportError as exc:
        return {"available": False, "reason": f"panel not available: {exc}"}
    from mashroom_jobs import BackgroundJobService

    messages: list[float] = []
    original = Widget._send

    def counting(self: Widget, msg: dict[str, Any], buffers: Any = None) -> None:
        messages.append(time.time())
        original(self, msg, buffers)

    Widget._send = counting  # type: ignore[method-assign]

    service = BackgroundJobService(timezone="UTC")
    runs: list[tuple[int, float]] = []
    record = runs.append

    def make(index: int) -> Any:
        def callback() -> None:
            record((index, time.time()))
        return callback

    hourly = f"0 {far_minute()} * * * *"
    for i in range(n):
        service.schedule_job(f"job-{i:05}", EVERY_SECOND if i < firing else hourly, make(i))
    before = len(_instances)
    t0 = time.perf_counter()
    view = JobsPanel(service, callables={}) if panel else None
    build_s = time.perf_counter() - t0
    models = len(_instances) - before

    def flush_count() -> int:
        return view.flush_count if view is not None else 0

    first = math.ceil(time.time()) + 2
    sleep_until(first - 0.5)
    cpu0, wall0 = time.process_time(), time.time()
    flushes0, sent0 = flush_count(), len(messages)
    sleep_until(first + window - 0.5)
    cpu1, wall1 = time.process_time(), time.time()
    flushes1, sent1 = flush_count(), len(messages)
    sleep_until(first + window + 1.5)
    service.wait_until_idle(5)
    if view is not None:
        view.close()
    service.shutdown(wait=False)
    Widget._send = original  # type: ignore[method-assign]

    late_ms: list[float] = []
    seen: set[tuple[int, float]] = set()
    for index, start in runs:
        served = float(math.floor(start))
        if first <= served < first + window and (index, served) not in seen:
            seen.add((index, served))
            late_ms.append((start - served) * 1000.0)
    late_ms.sort()
    wall = wall1 - wall0
    return {
        "available": True,
        "panel": panel,
        "n": n,
        "firing": firing,
        "window_s": window,
        "widget_models": models,
        "build_s": build_s,
        "flushes_per_s": (flushes1 - flushes0) / wall,
        "messages_per_s": (sent1 - sent0) / wall,
        "cpu_per_wall": (cpu1 - cpu0) / wall,
        "missed": firing * window - len(seen),
        "p99_ms": percentile(late_ms, 99),
    }
