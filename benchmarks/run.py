"""Run every case, each scheduler in its own fresh process, alternating; print and save.

``python -m benchmarks [--quick] [--json PATH]``
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_JSON = ROOT / "benchmarks" / "results" / "latest.json"
OURS, THEIRS = "mashroom", "apscheduler"
LABELS = {OURS: "mashroom-jobs", THEIRS: "APScheduler 3.11"}


@dataclass
class Plan:
    """Sizes of one run: the full run, or the quick smoke check (about a minute)."""

    lateness_n: list[int]
    window: int
    busy_n: int
    setup_n: int
    idle_n: int
    idle_window: float
    memory_n: int
    invocations: int
    panel_n: int
    panel_firing: int
    panel_window: int
    panel_baseline: bool = True
    #: case 7: every-second jobs without the store, with it, with it and exclusive
    store_n: int = 1000
    store_variants: tuple[str, ...] = (OURS, "mashroom+store", "mashroom+exclusive")
    #: case 7's fires measured, and seconds waited after them for late runs
    store_window: int = 8
    store_grace: float = 2.0
    #: case 8: runs in the store, of how many jobs
    history_runs: int = 100_000
    history_jobs: int = 100
    #: case 9: jobs on a 2-worker LocalCluster beside raw client.submit (needs distributed)
    dask_n: tuple[int, ...] = (200, 1000)
    dask_window: int = 3
    dask_grace: float = 2.0


FULL = Plan(lateness_n=[1, 100, 1000, 10000], window=8, busy_n=100, setup_n=10000,
            idle_n=1000, idle_window=10.0, memory_n=10000, invocations=100_000,
            panel_n=10000, panel_firing=100, panel_window=8)
QUICK = Plan(lateness_n=[1, 1000], window=2, busy_n=100, setup_n=1000, idle_n=1000,
             idle_window=2.0, memory_n=1000, invocations=2000, panel_n=1000,
             panel_firing=100, panel_window=2, panel_baseline=False,
             store_variants=("mashroom+exclusive",), store_window=1, store_grace=1.0,
             history_runs=20_000, history_jobs=20,
             dask_n=(100,), dask_window=2, dask_grace=1.0)
STORE_LABELS = {OURS: "no store", "mashroom+store": "store",
                "mashroom+exclusive": "store, exclusive jobs"}


# -- running one measurement -------------------------------------------------------


def measure(case: str, scheduler: str | None, params: dict[str, Any],
            timeout: float = 900) -> dict[str, Any]:
    """Run one case in a fresh interpreter; its result dict, or {"error": ...}."""
    spec = {"case": case, "scheduler": scheduler, "params": params}
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "result.json"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        started = time.perf_counter()
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "benchmarks.worker", json.dumps(spec), str(out)],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout} s"}
        elapsed = time.perf_counter() - started
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            return {"error": f"exit {proc.returncode}: " + " | ".join(tail)}
        result: dict[str, Any] = json.loads(out.read_text())
        result["process_s"] = round(elapsed, 2)
        return result


def pair(case: str, params: dict[str, Any], first: str, log: list[dict[str, Any]],
         repeat: int = 1) -> dict[str, dict[str, Any]]:
    """Both schedulers, one after the other, ``first`` first; with ``repeat``, that many
    rounds with the order flipped each round, and each figure the median of the rounds."""
    rounds: dict[str, list[dict[str, Any]]] = {OURS: [], THEIRS: []}
    order = [first, THEIRS if first == OURS else OURS]
    for _ in range(repeat):
        for scheduler in order:
            label = f"{case} {LABELS[scheduler]} {json.dumps(params)}"
            print(f"  running {label} ...", file=sys.stderr, flush=True)
            result = measure(case, scheduler, params)
            rounds[scheduler].append(result)
            log.append({"case": case, "scheduler": scheduler, "params": params,
                        "result": result})
            if "error" in result:
                print(f"    ERROR: {result['error']}", file=sys.stderr, flush=True)
        order.reverse()
    return {scheduler: median_result(results) for scheduler, results in rounds.items()}


def median_result(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of every numeric figure over rounds (the first round's other values)."""
    good = [r for r in results if "error" not in r]
    if not good:
        return results[0]
    merged = dict(good[0])
    for key, value in good[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            values = [r[key] for r in good if isinstance(r.get(key), (int, float))]
            merged[key] = statistics.median(values)
    merged["rounds"] = len(good)
    return merged


# -- the table ------------------------------------------------------------------------


@dataclass
class Row:
    case: str
    metric: str
    ours: Any
    theirs: Any
    target: str = ""
    met: bool | None = None
    lower_is_better: bool = True

    @property
    def ratio(self) -> float | None:
        """APScheduler's figure over ours: how many times better (or worse) we are."""
        a, b = self.theirs, self.ours
        if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
            return None
        if math.isnan(a) or math.isnan(b):
            return None
        if not self.lower_is_better:
            a, b = b, a
        if b == 0:
            return None
        return a / b


def _get(result: dict[str, Any], key: str) -> Any:
    if "error" in result:
        return "error"
    return result.get(key, math.nan)


def format_value(value: Any, digits: int = 2) -> str:
    """A figure as the tables show it (also the documentation's, docs/_ext)."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if math.isnan(value):
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.{digits}f}"


def format_ratio(ratio: float | None) -> str:
    if ratio is None:
        return "-"
    return f"{ratio:.1f}×" if ratio >= 0.095 else f"{ratio:.2f}×"


def format_met(met: bool | None) -> str:
    return "" if met is None else ("yes" if met else "NO")


HEADER = ["case", "metric", LABELS[OURS], LABELS[THEIRS], "APS ÷ ours", "target", "met"]


def render(rows: list[Row], markdown: bool = False) -> str:
    body = [[r.case, r.metric, format_value(r.ours), format_value(r.theirs),
             format_ratio(r.ratio), r.target, format_met(r.met)] for r in rows]
    if markdown:
        lines = ["| " + " | ".join(HEADER) + " |",
                 "|" + "|".join(["---", "---", "---:", "---:", "---:", "---", "---"]) + "|"]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
        return "\n".join(lines)
    widths = [max(len(x) for x in col) for col in zip(HEADER, *body)]
    out = ["  ".join(h.ljust(w) for h, w in zip(HEADER, widths)),
           "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip() for cells in body]
    return "\n".join(out)


def _num(value: Any) -> float:
    return value if isinstance(value, (int, float)) else math.nan


def lateness_rows(n: int, res: dict[str, dict[str, Any]],
                  floor: dict[str, Any] | None = None) -> list[Row]:
    ours, theirs = res[OURS], res[THEIRS]
    case = f"1 lateness N={n:,}"
    floor_note = "" if floor is None else f" (the floor: {format_value(_get(floor, 'p99_ms'))})"
    p99 = _num(_get(ours, "p99_ms"))
    targets = {1000: ("≤ 5 ms", p99 <= 5), 10000: ("≤ 50 ms", p99 <= 50)}
    p99_target, p99_met = targets.get(n, ("", None))
    missed_target = "0" if n >= 1000 else ""
    missed = _get(ours, "missed")
    cpu = _num(_get(ours, "cpu_per_wall"))
    expected = _get(ours, "expected")
    return [
        Row(case, "p50 lateness, ms", _get(ours, "p50_ms"), _get(theirs, "p50_ms")),
        Row(case, f"p99 lateness, ms{floor_note}", _get(ours, "p99_ms"),
            _get(theirs, "p99_ms"), p99_target, p99_met),
        Row(case, "max lateness, ms", _get(ours, "max_ms"), _get(theirs, "max_ms")),
        Row(case, f"missed fires (of {format_value(expected)})", missed, _get(theirs, "missed"),
            missed_target, (missed == 0) if missed_target else None),
        Row(case, "CPU, cores", _get(ours, "cpu_per_wall"), _get(theirs, "cpu_per_wall"),
            "≤ 0.5" if n == 10000 else "", (cpu <= 0.5) if n == 10000 else None),
    ]


def busy_rows(n: int, res: dict[str, dict[str, Any]], baseline: dict[str, Any]) -> list[Row]:
    ours, theirs = res[OURS], res[THEIRS]
    case = f"2 busy main N={n}"
    p99 = _num(_get(ours, "p99_ms"))
    base = _num(_get(baseline, "main_rounds_per_s"))

    def share(r: dict[str, Any]) -> float:
        return 100.0 * _num(_get(r, "main_rounds_per_s")) / base

    return [
        Row(case, "p50 lateness, ms", _get(ours, "p50_ms"), _get(theirs, "p50_ms")),
        Row(case, "p99 lateness, ms", _get(ours, "p99_ms"), _get(theirs, "p99_ms"),
            "≤ 10 ms", p99 <= 10),
        Row(case, "missed fires", _get(ours, "missed"), _get(theirs, "missed")),
        Row(case, "main thread's work, % of alone", share(ours), share(theirs),
            lower_is_better=False),
    ]


def setup_rows(shared: dict[str, dict[str, Any]], distinct: dict[str, dict[str, Any]],
               n: int) -> list[Row]:
    case = f"3 set-up N={n:,}"
    add = _num(_get(shared[OURS], "add_us"))
    return [
        Row(case, "µs per schedule, shared expression", _get(shared[OURS], "add_us"),
            _get(shared[THEIRS], "add_us"), "≤ 20 µs", add <= 20),
        Row(case, "µs per schedule, distinct expressions", _get(distinct[OURS], "add_us"),
            _get(distinct[THEIRS], "add_us")),
        Row(case, "µs per unschedule", _get(shared[OURS], "remove_us"),
            _get(shared[THEIRS], "remove_us")),
    ]


def idle_rows(res: dict[str, dict[str, Any]], n: int, window: float) -> list[Row]:
    case = f"4 idle {n:,} hourly, {window:g} s"
    wake = _get(res[OURS], "wakeups")
    return [
        Row(case, "CPU seconds", _get(res[OURS], "cpu_s"), _get(res[THEIRS], "cpu_s"),
            "≈ 0"),
        Row(case, "timer wake-ups", wake, _get(res[THEIRS], "wakeups"), "0", wake == 0),
        Row(case, "voluntary context switches", _get(res[OURS], "voluntary_switches"),
            _get(res[THEIRS], "voluntary_switches")),
    ]


def memory_rows(res: dict[str, dict[str, Any]], n: int, invocations: int) -> list[Row]:
    case = "5 memory"
    growth = _num(_get(res[OURS], "rss_growth_after_warmup_kib"))
    return [
        Row(case, f"RSS per scheduled job, bytes (N={n:,})", _get(res[OURS], "rss_per_job_bytes"),
            _get(res[THEIRS], "rss_per_job_bytes")),
        Row(case, "RSS per job with a full history (20 runs), bytes",
            _get(res[OURS], "rss_per_job_full_history_bytes"),
            _get(res[THEIRS], "rss_per_job_full_history_bytes"), "≤ 1,500",
            _num(_get(res[OURS], "rss_per_job_full_history_bytes")) <= 1500),
        Row(case, "objects the garbage collector tracks, per job", _get(res[OURS],
            "gc_tracked_per_job"), _get(res[THEIRS], "gc_tracked_per_job")),
        Row(case, f"full garbage collection at N={n:,}, ms", _get(res[OURS], "full_gc_ms"),
            _get(res[THEIRS], "full_gc_ms"), "≤ 10 ms",
            _num(_get(res[OURS], "full_gc_ms")) <= 10),
        Row(case, f"RSS growth over runs 10%-100% of {invocations:,}, KiB",
            _get(res[OURS], "rss_growth_after_warmup_kib"),
            _get(res[THEIRS], "rss_growth_after_warmup_kib"), "no growth", growth <= 64),
        Row(case, "run-now round trip, µs", _get(res[OURS], "run_now_round_trip_us"),
            _get(res[THEIRS], "run_now_round_trip_us")),
    ]


def panel_rows(result: dict[str, Any], baseline: dict[str, Any] | None) -> list[Row]:
    if "error" in result or not result.get("available", False):
        reason = result.get("error") or result.get("reason", "panel not available")
        return [Row("6 panel", reason, None, None)]
    n, firing = result["n"], result["firing"]
    case = f"6 panel {n:,} jobs, {firing} firing"
    models, flushes = result["widget_models"], result["flushes_per_s"]
    rows = [
        Row(case, "widget models created", models, "n/a", "≤ 600", models <= 600),
        Row(case, "flushes per second", flushes, "n/a", "≤ 4", flushes <= 4),
        Row(case, "front-end messages per second", result["messages_per_s"], "n/a"),
        Row(case, "CPU, cores, with the panel", result["cpu_per_wall"], "n/a"),
        Row(case, "p99 lateness with the panel, ms", result["p99_ms"], "n/a"),
    ]
    if baseline is not None and "error" not in baseline:
        rows.insert(3, Row(case, "CPU, cores, same jobs without a panel",
                           baseline["cpu_per_wall"], "n/a"))
        rows.append(Row(case, "p99 lateness without a panel, ms", baseline["p99_ms"], "n/a"))
    return rows


def store_rows(n: int, res: dict[str, dict[str, Any]]) -> list[Row]:
    """Case 7: the same every-second jobs without the store, with it, and exclusive."""
    case = f"7 store N={n:,}"
    rows = []
    base = _num(_get(res[OURS], "p99_ms")) if OURS in res else math.nan
    for variant, result in res.items():
        label = STORE_LABELS[variant]
        missed = _get(result, "missed")
        rows += [
            Row(case, f"p50 lateness, ms, {label}", _get(result, "p50_ms"), "n/a"),
            Row(case, f"p99 lateness, ms, {label}", _get(result, "p99_ms"), "n/a"),
            Row(case, f"max lateness, ms, {label}", _get(result, "max_ms"), "n/a"),
            Row(case, f"missed fires (of {format_value(_get(result, 'expected'))}), {label}",
                missed, "n/a", "0", missed == 0),
            Row(case, f"CPU, cores, {label}", _get(result, "cpu_per_wall"), "n/a"),
        ]
        if variant != OURS:
            lost = _get(result, "lost_from_store")
            runs = format_value(_get(result, "runs"))
            rows.append(Row(case, f"runs missing from the store (of {runs}), {label}", lost,
                            "n/a", "0", lost == 0))
            ratio = _num(_get(result, "p99_ms")) / base
            rows.append(Row(case, f"p99 lateness {label} ÷ no store", ratio, "n/a", "≤ 1.5",
                            None if math.isnan(ratio) else ratio <= 1.5))
    return rows


def history_rows(result: dict[str, Any]) -> list[Row]:
    """Case 8: history() on a store of many runs."""
    if "error" in result:
        return [Row("8 history", str(result["error"]), None, None)]
    case = f"8 history, {result['runs']:,} runs of {result['jobs']} jobs"
    p99 = result["history_one_p99_ms"]
    return [
        Row(case, "history() of one job (50 runs), p50 ms", result["history_one_p50_ms"],
            "n/a"),
        Row(case, "history() of one job (50 runs), p99 ms", p99, "n/a", "≤ 10 ms", p99 <= 10),
        Row(case, "history() of every job (50 runs), p99 ms", result["history_all_p99_ms"],
            "n/a"),
        Row(case, "history() of one job (1,000 runs), p50 ms", result["history_1000_p50_ms"],
            "n/a"),
        Row(case, "building a run and record() of it, µs (the recording thread)",
            result["record_us"], "n/a"),
        Row(case, "runs written per second", result["write_runs_per_s"], "n/a"),
        Row(case, "file size, MB", result["file_mb"], "n/a"),
    ]


def dask_rows(result: dict[str, Any]) -> list[Row]:
    """Case 9: mashroom-jobs on a cluster against raw ``client.submit`` on the same one."""
    if "error" in result or not result.get("available", False):
        reason = result.get("error") or result.get("reason", "distributed not available")
        return [Row("9 Dask", reason, None, None)]
    n = result["n"]
    raw, same, skip = (median_result(result[kind]) for kind in ("raw", "allow", "skip"))
    case = f"9 Dask N={n:,}, 2 workers"
    raw_p99, ours_p99 = _num(raw["p99_ms"]), _num(same["p99_ms"])
    expected = same["expected"]
    return [
        Row(case, f"p50 lateness, ms (raw client.submit: {format_value(raw['p50_ms'])})",
            same["p50_ms"], "n/a"),
        Row(case, f"p99 lateness, ms (raw client.submit: {format_value(raw_p99)})", ours_p99, "n/a",
            "≤ 1.5 × raw", ours_p99 <= 1.5 * raw_p99),
        Row(case, f"fires lost (of {format_value(expected)}; raw: {format_value(raw['missed'])})",
            same["missed"], "n/a", "0", same["missed"] == 0),
        Row(case, "with overlap='skip' (the default): p99 lateness, ms", skip["p99_ms"], "n/a"),
        Row(case, f"with overlap='skip': fires skipped (of {format_value(expected)})",
            skip["missed"], "n/a"),
    ]


# -- the machine ------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory_gib = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    versions = {}
    for name in ("mashroom-jobs", "apscheduler", "croniter", "traitlets", "ipywidgets",
                 "distributed"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "switch_interval_s": sys.getswitchinterval(),
        "versions": versions,
    }


def load() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


# -- main -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="the one-minute smoke check: short windows, small N")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON,
                        help=f"where to write the results (default {DEFAULT_JSON})")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--only", default="",
                        help="comma-separated case numbers to run (default: all)")
    parser.add_argument("--precise-wakeups", action="store_true",
                        help="run mashroom-jobs with precise_wakeups=True (default: off, "
                             "as a service starts)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of cases 1, 2 and 7 (order flipped each round); "
                             "the table shows the median of the rounds")
    parser.add_argument("--plot", type=Path, metavar="PATH",
                        help="also write the plot of case 1, p99 lateness against N beside "
                             "APScheduler and the floor (.svg or .png; needs matplotlib)")
    parser.add_argument("--from", dest="source", type=Path, metavar="JSON",
                        help="with --plot: plot this results file instead of measuring")
    args = parser.parse_args(argv)
    if args.source is not None:
        if args.plot is None:
            parser.error("--from only goes with --plot")
        from .plot import write_lateness_plot

        write_lateness_plot(json.loads(args.source.read_text()), args.plot)
        print(f"plot written to {args.plot}")
        return 0
    if args.precise_wakeups:  # read by the workers' MashroomAdapter
        os.environ["MASHROOM_JOBS_BENCH_PRECISE"] = "1"
    plan = QUICK if args.quick else FULL
    only = {c.strip() for c in args.only.split(",") if c.strip()}

    def wanted(case: str) -> bool:
        return not only or case in only

    started = time.time()
    meta = {"machine": machine(), "quick": args.quick, "repeat": args.repeat,
            "precise_wakeups": args.precise_wakeups,
            "plan": plan.__dict__,
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "load_before": load()}
    log: list[dict[str, Any]] = []
    rows: list[Row] = []
    flip = 0

    def first() -> str:
        nonlocal flip
        flip += 1
        return OURS if flip % 2 else THEIRS

    case_one: dict[str, Any] | None = None  # N = store_n without a store, for case 7
    if wanted("1"):
        for n in plan.lateness_n:
            params = {"n": n, "window": plan.window}
            res = pair("lateness", params, first(), log, args.repeat)
            floor = None
            if not args.quick:  # the floor needs no smoke check
                floor_rounds = []
                for _ in range(args.repeat):
                    print(f"  running lateness floor {json.dumps(params)} ...",
                          file=sys.stderr, flush=True)
                    floor_rounds.append(measure("lateness", "floor", params))
                    log.append({"case": "lateness", "scheduler": "floor", "params": params,
                                "result": floor_rounds[-1]})
                floor = median_result(floor_rounds)
            rows += lateness_rows(n, res, floor)
            if n == plan.store_n:
                case_one = res[OURS]
    if wanted("2"):
        print("  running main-thread baseline ...", file=sys.stderr, flush=True)
        baseline = measure("baseline", None, {"window": float(plan.window)})
        log.append({"case": "baseline", "scheduler": None, "params": {}, "result": baseline})
        res = pair("lateness", {"n": plan.busy_n, "window": plan.window, "busy": True},
                   first(), log, args.repeat)
        rows += busy_rows(plan.busy_n, res, baseline)
    if wanted("3"):
        shared = pair("setup", {"n": plan.setup_n, "shared": True}, first(), log)
        distinct = pair("setup", {"n": plan.setup_n, "shared": False}, first(), log)
        rows += setup_rows(shared, distinct, plan.setup_n)
    if wanted("4"):
        res = pair("idle", {"n": plan.idle_n, "window": plan.idle_window}, first(), log)
        rows += idle_rows(res, plan.idle_n, plan.idle_window)
    if wanted("5"):
        res = pair("memory", {"n": plan.memory_n, "invocations": plan.invocations}, first(),
                   log)
        rows += memory_rows(res, plan.memory_n, plan.invocations)
    if wanted("6"):
        params = {"n": plan.panel_n, "firing": plan.panel_firing, "window": plan.panel_window}
        print("  running panel ...", file=sys.stderr, flush=True)
        with_panel = measure("panel", OURS, params)
        log.append({"case": "panel", "scheduler": OURS, "params": params, "result": with_panel})
        without = None
        if plan.panel_baseline and with_panel.get("available"):
            without = measure("panel", OURS, {**params, "panel": False})
            log.append({"case": "panel", "scheduler": OURS, "params": {**params, "panel": False},
                        "result": without})
        rows += panel_rows(with_panel, without)
    if wanted("7"):
        params = {"n": plan.store_n, "window": plan.store_window, "grace": plan.store_grace}
        variants = list(plan.store_variants)
        rounds: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
        for _ in range(args.repeat):  # the order flipped each round, as for cases 1-2
            for variant in variants:
                print(f"  running lateness {variant} {json.dumps(params)} ...",
                      file=sys.stderr, flush=True)
                result = measure("lateness", variant, params)
                rounds[variant].append(result)
                log.append({"case": "store", "scheduler": variant, "params": params,
                            "result": result})
            variants.reverse()
        res = {v: median_result(r) for v, r in rounds.items()}
        if OURS not in res and case_one is not None:  # --quick: case 1's run without a store
            res = {OURS: case_one, **res}
        rows += store_rows(plan.store_n, res)
    if wanted("8"):
        params = {"runs": plan.history_runs, "jobs": plan.history_jobs}
        print(f"  running history {json.dumps(params)} ...", file=sys.stderr, flush=True)
        result = measure("history", OURS, params)
        log.append({"case": "history", "scheduler": OURS, "params": params, "result": result})
        rows += history_rows(result)
    if wanted("9"):
        for n in plan.dask_n:
            params = {"n": n, "window": plan.dask_window, "rounds": args.repeat,
                      "grace": plan.dask_grace}
            print(f"  running Dask N={n} (mashroom-jobs and raw client.submit) ...",
                  file=sys.stderr, flush=True)
            result = measure("dask", None, params)
            log.append({"case": "dask", "scheduler": None, "params": params, "result": result})
            if "error" in result:
                print(f"    ERROR: {result['error']}", file=sys.stderr, flush=True)
            rows += dask_rows(result)

    meta["load_after"] = load()
    meta["duration_s"] = round(time.time() - started, 1)
    table = render(rows, markdown=args.markdown)
    print(table)
    print(f"\n{meta['machine']['cpu']}, {meta['machine']['cores']} cores, Python "
          f"{meta['machine']['python']}; load average before {meta['load_before']}, "
          f"after {meta['load_after']}; {meta['duration_s']} s")
    document = {
        "meta": meta,
        "table": [{"case": r.case, "metric": r.metric, "mashroom_jobs": r.ours,
                   "apscheduler": r.theirs, "ratio_aps_over_ours": r.ratio,
                   "target": r.target, "met": r.met} for r in rows],
        "runs": log,
        "markdown": render(rows, markdown=True),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(document, indent=1, default=str) + "\n")
    print(f"results written to {args.json}")
    if args.plot is not None:
        from .plot import write_lateness_plot

        write_lateness_plot(document, args.plot)
        print(f"plot written to {args.plot}")
    failed = [entry for entry in log if "error" in entry["result"]]
    return 1 if failed else 0
