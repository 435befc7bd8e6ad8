"""Write the tour notebooks from the sources in this file, and optionally run them.

    python notebooks/_build.py             # write the .ipynb files (unexecuted)
    python notebooks/_build.py --execute   # write, then run each in place to store its outputs
    python notebooks/_build.py --execute 04-job-store.ipynb   # only the notebooks named

The notebooks are tests as well as a tour: ``pytest notebooks --nbval`` re-runs each
cell and compares its output with the stored one (after ``notebooks/sanitize.cfg``),
so they must be saved *executed*.  Edit the cells here, never in the .ipynb alone,
then rebuild with ``--execute`` and check the diff of the outputs.

Conventions (see docs/readme-notebooks.md):

* cells that prove something end in plain ``assert`` statements;
* jobs record into lists or their invocation records instead of printing into cells
  (a job's ``print`` goes to its invocation's ``output``);
* runs are awaited with ``job.invoke_now().result()`` or ``service.wait_until_idle()``;
  where a real schedule must be seen firing, a seconds-level job sets an Event that
  the cell waits on with a short timeout;
* only output that changes from run to run is sanitized (sanitize.cfg) or marked
  ``# NBVAL_IGNORE_OUTPUT`` (cells that display the panel widget itself, whose text
  form lists every widget with relative times, and ``%load_ext``, which prints a
  note where the kernel already loads the extension at start, as on Binder);
* each notebook ends by unloading the extension, which unschedules its jobs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).resolve().parent


def md(text: str) -> nbf.NotebookNode:
    return nbf.v4.new_markdown_cell(text.strip("\n"))


def code(text: str) -> nbf.NotebookNode:
    return nbf.v4.new_code_cell(text.strip("\n"))


LOAD = code("""
# NBVAL_IGNORE_OUTPUT
# (where the kernel already loads the extension at start, as on Binder, this prints a note)
%load_ext mashroom_jobs
""")

# --------------------------------------------------------------------------------------------
# 01 getting started
# --------------------------------------------------------------------------------------------

GETTING_STARTED = [
    md("""
# Getting started with mashroom-jobs

mashroom-jobs is a cron scheduler that lives in your kernel: you schedule *jobs* (Python
functions, coroutines or cell bodies) on cron expressions, they run on background threads
while you keep working, and a live panel shows each job's next run, last run, output and
errors.

This notebook walks through the basics: load the extension, schedule a job from Python and
with `%%schedule`, watch it in the panel, run it now, pause it, unschedule it, and read what
it did. It is also a test: every cell that shows a behaviour ends with `assert`s, and the
project's test suite re-runs this notebook with
[nbval](https://github.com/computationalmodelling/nbval) and compares each output with the
one stored here.
"""),
    md("""
## Load the extension

`%load_ext mashroom_jobs` creates the kernel's one `BackgroundJobService`, adds the magics
`%jobs`, `%%schedule` and `%unschedule`, and loads the background-job *plugins* installed
in this environment (notebook 02 is about those). `mashroom-jobs autoload enable` makes
every kernel load it at start.
"""),
    LOAD,
    md("""
The service is a traitlets `Configurable`, so `%config` (or `c.BackgroundJobService...` in
`ipython_kernel_config.py`) configures it. We evaluate cron expressions in UTC here, so the
notebook shows the same times wherever it runs, and switch off the installed example
plugin, so the panel shows only the jobs we make.
"""),
    code("""
import threading
from datetime import datetime, timedelta, timezone
from itertools import pairwise

import mashroom_jobs

service = mashroom_jobs.get_service()
%config BackgroundJobService.timezone = "UTC"
%config BackgroundJobService.disabled_plugins = ["Example heartbeat"]

assert "mashroom_jobs" in get_ipython().extension_manager.loaded
assert service.zone.key == "UTC"
assert service.jobs == ()
service
"""),
    md("""
## Schedule a job from Python

`service.schedule_job(name, cron_expression, callback)` returns a `BackgroundJob`. The
callback takes the job's `PluginContext` (or no argument) and runs on a worker thread of
the service, never on the kernel's main thread.
"""),
    code("""
reports = []

def nightly_report(context):
    reports.append(threading.current_thread().name)
    print(f"report {len(reports)} written")

job = service.schedule_job("Nightly report", "0 6 * * *", nightly_report)
job
"""),
    md("""
The job knows its schedule in words, its zone, and its next fire time (an aware
`datetime`). It has not run yet.
"""),
    code("""
print(job.description)
print(job.timezone)
print(f"next run at {job.next_invocation:%H:%M %Z}")

now = datetime.now(timezone.utc)
assert (job.next_invocation.hour, job.next_invocation.minute) == (6, 0)
assert timedelta(0) < job.next_invocation - now <= timedelta(days=1)
assert job.last_invocation is None and job.run_count == 0 and reports == []
"""),
    md("""
## Schedule a cell with `%%schedule`

`%%schedule NAME CRON [--tz ZONE] [--now]` turns the body of a cell into a job. The body
runs in the notebook's namespace, so it can read your variables and the names it assigns
land there. Scheduling a cell does not run it.
"""),
    code("""
rows = ["alpha", "beta", "gamma"]
"""),
    code("""
%%schedule "Count rows" "0 7 * * Mon-Fri"
row_count = len(rows)
print(f"{row_count} rows")
"""),
    code("""
count_job = service.get_job("Count rows")
print(count_job)

assert count_job.cron_schedule == "0 7 * * Mon-Fri"
assert count_job.next_invocation.hour == 7 and count_job.next_invocation.weekday() < 5
assert "row_count" not in globals()  # scheduled, not run
"""),
    md("""
## Watch the jobs in the panel

Displaying the service shows a live panel: one row per job with its state, schedule, next
and last run, and buttons to run, pause and unschedule it. (Where widgets cannot render,
and in this notebook's stored text output, you see the same jobs as a table.)
"""),
    code("""
service
"""),
    md("""
`%jobs` shows the same panel and returns it; keep it in a variable to drive its buttons
from code. Each button is found by its tooltip, `Run <name> now`, `Pause <name>` and
`Unschedule <name>`, and `.click()` runs exactly what a click in the browser runs.
"""),
    code("""
# NBVAL_IGNORE_OUTPUT
# (the panel's text form lists every widget, with relative times such as "in 5 h")
panel = %jobs
panel
"""),
    code("""
panel.flush()  # the panel pushes changes a few times a second; flush() pushes them now
print([j.name for j in panel.visible_jobs])

assert panel.visible_jobs == (job, count_job)
"""),
    md("""
## Run it now

`job.invoke_now()` starts a run whatever the schedule and returns a
`concurrent.futures.Future` that resolves with the run's `JobInvocation`: when it started,
what started it, how long it took, whether it failed, and what it printed. The print in
`nightly_report` did not appear in this cell: it went into the invocation.
"""),
    code("""
invocation = job.invoke_now().result(timeout=10)
invocation
"""),
    code("""
print(repr(invocation.output))

assert invocation.success and invocation.trigger == "manual"
assert invocation.output == "report 1 written\\n"
assert invocation.scheduled_for is None  # a manual run serves no fire time
assert job.last_invocation == invocation and job.run_count == 1
assert reports[0] != threading.main_thread().name  # it ran on a worker thread
"""),
    md("""
The same from the panel: click the job's run button, then wait until the service is idle.
"""),
    code("""
panel.button("Run Nightly report now").click()
service.wait_until_idle(timeout=10)
"""),
    code("""
print(job.last_invocation.trigger, repr(job.last_invocation.output))
print([(inv.trigger, inv.output) for inv in job.history])

assert job.run_count == 2 and len(reports) == 2
assert job.last_invocation.output == "report 2 written\\n"
assert [inv.output for inv in job.history] == ["report 1 written\\n", "report 2 written\\n"]
"""),
    md("""
The `%%schedule` job runs in the notebook's namespace: running it assigns `row_count` here.
"""),
    code("""
count_run = count_job.invoke_now().result(timeout=10)
print(repr(count_run.output))

assert count_run.success and count_run.output == "3 rows\\n"
assert globals()["row_count"] == 3  # assigned by the job, in this namespace
"""),
    md("""
## Pause and resume

A paused job keeps its place in the service but does not fire on schedule: its
`next_invocation` is `None`, and the panel's pause button turns into a resume button.
Resuming fires again from the next fire time after now (runs missed while paused are not
made up).
"""),
    code("""
panel.button("Pause Nightly report").click()
print(job)

assert job.paused and job.next_invocation is None
assert panel.button("Resume Nightly report") is not None
"""),
    code("""
job.resume()
panel.flush()
print(job)

assert not job.paused and job.next_invocation.hour == 6
assert panel.button("Pause Nightly report") is not None
"""),
    md("""
## See a schedule fire

A six-field expression has seconds first: `*/1 * * * * *` fires every second. This job
appends to a list and, on its third run, sets an event that the next cell waits for (with
a timeout, so a broken scheduler fails the cell instead of hanging it).
"""),
    code("""
ticks = []
three_ticks = threading.Event()
"""),
    code("""
%%schedule "Tick" "*/1 * * * * *"
ticks.append(datetime.now(timezone.utc))
if len(ticks) == 3:
    three_ticks.set()
"""),
    code("""
assert three_ticks.wait(timeout=10), f"only {len(ticks)} ticks in 10 s"
tick_job = service.get_job("Tick")
%unschedule Tick

fired_for = [inv.scheduled_for for inv in tick_job.history]
assert all(inv.trigger == "schedule" and inv.success for inv in tick_job.history)
assert all(t.microsecond == 0 for t in fired_for)  # on whole seconds
assert all(b - a >= timedelta(seconds=1) for a, b in pairwise(fired_for))
assert not tick_job.active and service.get_job("Tick") is None
"""),
    md("""
## Unschedule

Unscheduling removes a job from the service: it fires no more (a run in progress would
finish and still be recorded). The panel's trash button does it, and so does
`%unschedule NAME` or `service.unschedule_job(name)`.
"""),
    code("""
panel.button("Unschedule Nightly report").click()
print([j.name for j in panel.visible_jobs])

assert service.get_job("Nightly report") is None and not job.active
assert job.next_invocation is None and job.run_count == 2  # its record stays readable
"""),
    code("""
%unschedule "Count rows"
service
"""),
    md("""
## Clean up

Unloading the extension closes its panels, unschedules every job and shuts the service
down (its threads end).
"""),
    code("""
%unload_ext mashroom_jobs

assert service.is_shut_down and panel.closed
assert "mashroom_jobs" not in get_ipython().extension_manager.loaded
"""),
    md("""
Next: [02-plugins.ipynb](02-plugins.ipynb) (jobs that installed packages bring along) and
[03-async-errors-timezones.ipynb](03-async-errors-timezones.ipynb) (coroutines, failures,
time zones and daylight saving time).
"""),
]

# --------------------------------------------------------------------------------------------
# 02 plugins
# --------------------------------------------------------------------------------------------

PLUGINS = [
    md("""
# Background-job plugins

A *background-job plugin* is a job that an installed package brings along: install the
package, and every kernel that loads mashroom-jobs (and the `mashroom-jobs run` command)
schedules its job. It is the Python form of the
[Mashroom Server](https://www.mashroom-server.com) plugin type `background-job`.

A plugin is two things:

1. an **entry point** in the group `mashroom_jobs.plugins`, in the package's
   `pyproject.toml`; its name is the plugin's (and its job's) name:

   ```toml
   [project.entry-points."mashroom_jobs.plugins"]
   "Example heartbeat" = "mashroom_jobs_example:bootstrap"
   ```

2. a **bootstrap** function, `bootstrap(plugin_name, plugin_config, context_holder)`, which
   returns the job's callback. `@background_job_plugin(default_config=...)` declares its
   default config: `cron_schedule`, `invoke_immediately` and `timezone` mean something to
   mashroom-jobs, every other key is the plugin's own.

   ```python
   @background_job_plugin(default_config={"cron_schedule": "*/5 * * * *",
                                          "message": "still alive"})
   def bootstrap(plugin_name, plugin_config, context_holder):
       def heartbeat(context):
           print(f"{plugin_name}: {plugin_config['message']}")
       return heartbeat
   ```

This repository ships that example plugin in `plugins_examples/mashroom-jobs-example`
(the test setup and Binder install it) and a package of broken plugins in
`plugins_examples/mashroom-jobs-broken`.
"""),
    LOAD,
    md("""
## The installed plugins

`%jobs --plugins` lists the plugins the extension loaded, with their state, schedule and
the package they come from.
"""),
    code("""
import threading
from importlib.metadata import entry_points

import mashroom_jobs_example

import mashroom_jobs

service = mashroom_jobs.get_service()
%jobs --plugins
"""),
    md("""
The example plugin's entry point, found with nothing but `importlib.metadata`, and the
default config its bootstrap declares:
"""),
    code("""
from mashroom_jobs.plugins import inspect_plugin

(example_ep,) = [ep for ep in entry_points(group="mashroom_jobs.plugins")
                 if ep.name == "Example heartbeat"]
print(f"{example_ep.name!r} = {example_ep.value!r}")
print(f"declared by {example_ep.dist.name} {example_ep.dist.version}")

spec = inspect_plugin(example_ep)  # imports the bootstrap, does not call it
print(dict(spec.config))

assert spec.bootstrap is mashroom_jobs_example.bootstrap and spec.error is None
assert spec.cron_schedule == "*/5 * * * *"
"""),
    md("""
Loading the extension bootstrapped the plugin under its entry point's name and scheduled
the callback it returned as a job of the same name. `service.plugins` keeps one record per
plugin.
"""),
    code("""
(record,) = [r for r in service.plugins if r.name == "Example heartbeat"]
print(record)
print(record.job.cron_schedule, "-", record.job.description)

assert record.state == "loaded" and record.error is None
assert record.job is service.get_job("Example heartbeat") and record.job.active
assert mashroom_jobs_example.BOOTSTRAPPED[-1] == "Example heartbeat"
"""),
    md("""
A bootstrap is a plain function, so it is easy to try by hand (and to test): give it a
name, a config and a `PluginContextHolder`, and call the callback it returns. Called
directly like this, on the main thread, the callback prints into the cell.
"""),
    code("""
from mashroom_jobs import PluginContextHolder

holder = PluginContextHolder(service)
config = {"message": "called by hand"}
callback = mashroom_jobs_example.bootstrap("Hand-made heartbeat", config, holder)
callback(holder.get_plugin_context())

assert holder.get_plugin_context().services.background_jobs is service
assert mashroom_jobs_example.BEATS["Hand-made heartbeat"] == 1
"""),
    md("""
## Override a plugin's config with `%config`

`BackgroundJobService.plugin_config` maps plugin names to config that is merged over the
plugin's default config. Set in `ipython_kernel_config.py` it applies at kernel start;
changed with `%config` it reloads the plugins it concerns at once. Here the heartbeat gets
its own message and fires every second; the next cell waits for two scheduled beats.
"""),
    code("""
old_job = record.job
fast = {"cron_schedule": "*/1 * * * * *", "message": "hello from the tour"}
%config BackgroundJobService.plugin_config = {"Example heartbeat": fast}

(record,) = [r for r in service.plugins if r.name == "Example heartbeat"]
heartbeat = record.job
print(dict(record.config))

assert heartbeat is not old_job and not old_job.active  # the plugin was bootstrapped again
assert heartbeat.cron_schedule == "*/1 * * * * *"
"""),
    code("""
two_beats = threading.Event()

def on_state(change):  # a job's state is one observable trait
    if change.new.run_count >= 2:
        two_beats.set()

heartbeat.observe(on_state, names="state")
if heartbeat.run_count >= 2:  # it may have beaten twice already
    two_beats.set()
assert two_beats.wait(timeout=10), heartbeat.history
"""),
    md("""
Back to the defaults: an empty `plugin_config` reloads the plugin with its own config.
What the fast heartbeat printed is in its invocations (the beat counter is the example
plugin's own running total).
"""),
    code("""
%config BackgroundJobService.plugin_config = {}
service.wait_until_idle(timeout=10)

last = heartbeat.last_invocation
print(last.trigger, repr(last.output))
%jobs --plugins

beats = mashroom_jobs_example.BEATS["Example heartbeat"]
assert last.trigger == "schedule" and last.success
assert last.output == f"Example heartbeat: hello from the tour (beat {beats})\\n"
assert not heartbeat.active
assert service.get_job("Example heartbeat").cron_schedule == "*/5 * * * *"
"""),
    md("""
## What a broken plugin looks like

One broken plugin must not stop the others. `plugins_examples/mashroom-jobs-broken` declares
four plugins that fail in different ways: its module cannot be imported, its bootstrap
raises, its bootstrap returns a number instead of a callback, its default `cron_schedule`
is invalid.

The loader is split like xarray's backend loader: `discover()` reads the installed entry
points, and `load_plugins(service, entry_points)` is a pure function of the entry points it
is given. So we can load the broken package without installing it, from entry points built
by hand (exactly those in its `pyproject.toml`), next to the example plugin, on a separate
service of our own. Each failure is logged under the plugin's name.
"""),
    code("""
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

from mashroom_jobs import BackgroundJobService
from mashroom_jobs.plugins import format_plugins_table, load_plugins

sys.path.insert(0, str(Path("../plugins_examples/mashroom-jobs-broken").resolve()))
group = "mashroom_jobs.plugins"
broken = [
    EntryPoint("Broken import", "mashroom_jobs_broken.unimportable:bootstrap", group),
    EntryPoint("Broken bootstrap", "mashroom_jobs_broken:bootstrap_raises", group),
    EntryPoint("Broken callback", "mashroom_jobs_broken:bootstrap_returns_number", group),
    EntryPoint("Broken schedule", "mashroom_jobs_broken:bootstrap_with_bad_cron", group),
]

sandbox = BackgroundJobService(timezone="UTC")
records = load_plugins(sandbox, [*broken, example_ep])
"""),
    code("""
print(format_plugins_table(records))
"""),
    code("""
state = {r.name: r.state for r in records}
error = {r.name: r.error for r in records}
assert state == {
    "Broken import": "failed", "Broken bootstrap": "failed", "Broken callback": "failed",
    "Broken schedule": "failed", "Example heartbeat": "loaded",
}
assert error["Broken import"] == (
    "could not import mashroom_jobs_broken.unimportable:bootstrap: "
    "ModuleNotFoundError: No module named 'mashroom_jobs_missing_dependency'"
)
assert error["Broken bootstrap"] == "bootstrap raised RuntimeError: no database configured"
assert error["Broken callback"].startswith("bootstrap returned int 42, not a job callback")
assert error["Broken schedule"] == ("invalid config: Invalid cron expression '61 * * * *': "
                                    "minute 61 is out of range 0-59")
assert [j.name for j in sandbox.jobs] == ["Example heartbeat"]  # the good one still runs
"""),
    md("""
A failed record keeps the traceback of the failure, for the details:
"""),
    code("""
(failed,) = [r for r in records if r.name == "Broken bootstrap"]
print(failed.traceback.splitlines()[-1])

assert failed.traceback.startswith("Traceback (most recent call last):")
assert 'raise RuntimeError("no database configured")' in failed.traceback
"""),
    md("""
## Clean up
"""),
    code("""
sandbox.unschedule_all()
sandbox.shutdown()
%unload_ext mashroom_jobs

assert sandbox.is_shut_down and service.is_shut_down
assert service.plugins == () and service.jobs == ()
"""),
]

# --------------------------------------------------------------------------------------------
# 03 async jobs, errors, time zones
# --------------------------------------------------------------------------------------------

ASYNC_ERRORS_TIMEZONES = [
    md("""
# Async jobs, errors and time zones

This notebook shows a coroutine job, a job that fails (and what its failure records), a job
that runs in another time zone, and how schedules behave when daylight saving time starts
and ends.
"""),
    LOAD,
    code("""
import asyncio
import sys
import threading
from datetime import datetime, timedelta, timezone

import mashroom_jobs

service = mashroom_jobs.get_service()
%config BackgroundJobService.timezone = "UTC"
%config BackgroundJobService.disabled_plugins = ["Example heartbeat"]

assert service.jobs == ()
"""),
    md("""
## A coroutine job

An `async def` callback runs on the service's own event loop, on its own thread: the
kernel's loop and main thread stay free, and a job can `await` I/O without blocking the
worker threads of the plain jobs.
"""),
    code("""
fetched = []

async def fetch_prices(context):
    await asyncio.sleep(0.05)  # stands for an HTTP request
    fetched.append(threading.current_thread().name)
    print("prices fetched")

prices = service.schedule_job("Fetch prices", "0 6 * * *", fetch_prices)
run = prices.invoke_now().result(timeout=10)
print(run.success, repr(run.output))

assert run.success and run.output == "prices fetched\\n"
assert run.execution_time_ms >= 45  # it really awaited
assert fetched and fetched[0] != threading.main_thread().name
"""),
    md("""
A `%%schedule` cell with a top-level `await` becomes a coroutine job too:
"""),
    code("""
polled = []
"""),
    code("""
%%schedule "Poll feed" "0 6 * * *"
await asyncio.sleep(0.01)
polled.append(len(polled) + 1)
"""),
    code("""
poll_run = service.get_job("Poll feed").invoke_now().result(timeout=10)

assert poll_run.success and polled == [1]
"""),
    md("""
## A failing job

An exception in a job is not an error of the service: the run is recorded with
`success=False`, the error message and the traceback, the failure is logged, and the job
keeps its schedule.
"""),
    code("""
def sync_inventory():
    raise ConnectionError("inventory service unavailable")

inventory = service.schedule_job("Sync inventory", "30 6 * * *", sync_inventory)
failure = inventory.invoke_now().result(timeout=10)
failure
"""),
    code("""
print(failure.error_message)
print("\\n".join(failure.traceback.splitlines()[-2:]))

assert not failure.success
assert failure.error_message == "ConnectionError: inventory service unavailable"
assert failure.traceback.startswith("Traceback (most recent call last):")
assert 'raise ConnectionError("inventory service unavailable")' in failure.traceback
assert inventory.failure_count == 1 and inventory.run_count == 1
assert inventory.active and inventory.next_invocation is not None  # still scheduled
"""),
    md("""
The jobs table (and the panel) marks the job as failed (✗) and shows the error:
"""),
    code("""
service
"""),
    md("""
## Stop, timeout and retries

Python cannot interrupt a thread, so a long plain-function job polls its context's
`stop_requested` flag (or calls `context.check_stop()`, which raises `JobStopped`).
`job.stop()`, the panel's **Stop** button and a `timeout=` all set that flag; a run that
does not end within `stop_grace` seconds is recorded as stopped anyway and its thread is
abandoned.
"""),
    code("""
started = threading.Event()

def crunch(context):
    started.set()
    chunks = 0
    while not context.stop_requested.wait(0.02):  # a chunk of work, then a look at the flag
        chunks += 1
    print(f"stopped cleanly after {chunks} chunks")

cruncher = service.schedule_job("Crunch", "0 3 * * *", crunch)
pending = cruncher.invoke_now()
assert started.wait(10)
asked = cruncher.stop()
stopped = pending.result(timeout=10)
print(asked, stopped.success, stopped.error_message)

assert asked == 1 and not stopped.success and stopped.error_message == "stopped"
assert stopped.output.startswith("stopped cleanly after")
assert service.abandoned_runs == 0  # it ended within the grace period
"""),
    md("""
A coroutine job is cancelled: here a `timeout` of 0.2 s ends a coroutine that would sleep
for a minute.
"""),
    code("""
async def slow_download(context):
    await asyncio.sleep(60)

download = service.schedule_job("Slow download", "0 4 * * *", slow_download, timeout=0.2)
timed_out = download.invoke_now().result(timeout=10)
print(timed_out.error_message)

assert not timed_out.success and timed_out.error_message == "timed out after 0.2 s"
assert timed_out.execution_time_ms < 5_000
"""),
    md("""
A failed run is retried up to `retries` times, `retry_delay` seconds apart (manual runs
excepted: a click is its own retry). This run-once job fails twice, then succeeds;
`on_failure` callbacks hear only of failures that are not retried, so they stay quiet.
"""),
    code("""
attempts = []
succeeded = threading.Event()
failures_heard = []
stop_listening = service.on_failure(lambda job, run: failures_heard.append(job.name))

def flaky_upload():
    attempts.append(len(attempts) + 1)
    if len(attempts) < 3:
        raise TimeoutError(f"upload attempt {len(attempts)} timed out")
    succeeded.set()

upload = service.schedule_job("Flaky upload", None, flaky_upload, retries=2, retry_delay=0.1)
assert succeeded.wait(10)
service.wait_until_idle(timeout=10)
for run in upload.history:
    print(run.trigger, run.attempt, run.success, run.error_message)

assert [(r.trigger, r.attempt, r.success) for r in upload.history] == [
    ("immediate", 1, False), ("retry", 2, False), ("retry", 3, True)]
assert failures_heard == []
stop_listening()
"""),
    md("""
## A job in another time zone

Each job evaluates its expression in its own zone (default: the service's `timezone`).
`--tz` sets it in `%%schedule`, `timezone=` in `schedule_job`. This job fires at 09:00 in
Tokyo on weekdays, which is midnight UTC.
"""),
    code("""
openings = []
"""),
    code("""
%%schedule "Tokyo open" "0 9 * * Mon-Fri" --tz Asia/Tokyo
openings.append(datetime.now(timezone.utc))
"""),
    code("""
tokyo = service.get_job("Tokyo open")
print(tokyo.timezone, f"{tokyo.next_invocation:%H:%M %Z}")
print(f"{tokyo.next_invocation.astimezone(timezone.utc):%H:%M %Z}")

assert tokyo.timezone == "Asia/Tokyo"
assert tokyo.next_invocation.utcoffset() == timedelta(hours=9)
assert (tokyo.next_invocation.hour, tokyo.next_invocation.minute) == (9, 0)
assert tokyo.next_invocation.weekday() < 5
"""),
    md("""
## Daylight saving time

Fire times follow the rules of Debian's cron (cronie), evaluated in the job's zone:

* **spring forward**: every fire time inside the skipped hour becomes one fire at the
  first instant after the gap;
* **fall back**: a job fires again in the repeated hour only if its seconds, minute or hour
  field is an interval (`*`, `*/n`, `a/n`); a job at a fixed time fires once, in the
  first pass.

`CronSchedule(expression, zone).fire_times(start, n)` lists fire times without scheduling
anything. In Europe/Berlin, summer time ends on 25 October 2026 (03:00 CEST becomes 02:00
CET) and starts on 28 March 2027 (02:00 CET becomes 03:00 CEST).
"""),
    code("""
from mashroom_jobs import CronSchedule


def listing(expression, zone, start, n):
    schedule = CronSchedule(expression, zone)
    times = schedule.fire_times(start, n)
    print(f"{expression}  ({schedule.describe()}, {zone})")
    for when in times:
        print(f"  {when.isoformat()}  {when:%a %Z}")
    return [when.isoformat() for when in times]

fall_back = datetime(2026, 10, 24, 12, 0, tzinfo=timezone.utc)
spring_forward = datetime(2027, 3, 27, 12, 0, tzinfo=timezone.utc)
"""),
    md("""
A daily job at 02:30 fires **once** on the fall-back day, in the first pass through 02:30
(croniter alone would fire it twice):
"""),
    code("""
assert listing("30 2 * * *", "Europe/Berlin", fall_back, 3) == [
    "2026-10-25T02:30:00+02:00",
    "2026-10-26T02:30:00+01:00",
    "2026-10-27T02:30:00+01:00",
]
"""),
    md("""
An interval job keeps firing at every real interval, through both copies of the hour:
"""),
    code("""
before_gap = datetime(2026, 10, 24, 23, 15, tzinfo=timezone.utc)  # 01:15 CEST
assert listing("*/30 * * * *", "Europe/Berlin", before_gap, 5) == [
    "2026-10-25T01:30:00+02:00",
    "2026-10-25T02:00:00+02:00",
    "2026-10-25T02:30:00+02:00",
    "2026-10-25T02:00:00+01:00",
    "2026-10-25T02:30:00+01:00",
]
"""),
    md("""
A range of fixed hours is not an interval: 02:00 fires once, in the first pass.
"""),
    code("""
assert listing("0 1-4 * * *", "Europe/Berlin", fall_back, 5) == [
    "2026-10-25T01:00:00+02:00",
    "2026-10-25T02:00:00+02:00",
    "2026-10-25T03:00:00+01:00",
    "2026-10-25T04:00:00+01:00",
    "2026-10-26T01:00:00+01:00",
]
"""),
    md("""
On the spring-forward day 02:30 does not exist: the job fires once, at 03:00, the first
instant after the gap. A job every minute goes from 01:59 straight to 03:00.
"""),
    code("""
assert listing("30 2 * * *", "Europe/Berlin", spring_forward, 3) == [
    "2027-03-28T03:00:00+02:00",
    "2027-03-29T02:30:00+02:00",
    "2027-03-30T02:30:00+02:00",
]
before_jump = datetime(2027, 3, 28, 0, 58, tzinfo=timezone.utc)  # 01:58 CET
assert listing("* * * * *", "Europe/Berlin", before_jump, 3) == [
    "2027-03-28T01:59:00+01:00",
    "2027-03-28T03:00:00+02:00",
    "2027-03-28T03:01:00+02:00",
]
"""),
    md("""
The `mashroom-jobs cron` command prints the same listing in a terminal
(`mashroom-jobs cron "30 2 * * *" --tz Europe/Berlin --from 2026-10-24T12:00:00+00:00 -n 3`);
here it runs as `python -m mashroom_jobs` with this kernel's Python:
"""),
    code("""
python, start = sys.executable, fall_back.isoformat()
cli = !{python} -m mashroom_jobs cron "30 2 * * *" --tz Europe/Berlin --from {start} -n 3
print(cli.n)

assert cli[2:] == [
    "  2026-10-25T02:30:00+02:00  Sun",
    "  2026-10-26T02:30:00+01:00  Mon",
    "  2026-10-27T02:30:00+01:00  Tue",
]
"""),
    md("""
## Clean up
"""),
    code("""
%unload_ext mashroom_jobs

assert service.is_shut_down and not inventory.active and not tokyo.active and not upload.active
"""),
]

# --------------------------------------------------------------------------------------------
# 04 the job store
# --------------------------------------------------------------------------------------------

JOB_STORE = [
    md("""
# One job store for every kernel

A Jupyter user rarely has one kernel, and with `mashroom-jobs autoload enable` every kernel
loads every background-job plugin. Two things follow, and the *job store* handles both:

* the nightly plugin job must run **once**, not once per open notebook: a job scheduled
  with `exclusive=True` (plugin jobs are exclusive by default) runs each fire in exactly one
  of the processes that share the store; the others record that it *ran elsewhere*, and who
  ran it;
* what the jobs did must **outlive the kernel**: every run (its trigger, times, result,
  error, traceback and output) is written to the store, and `service.history()`, the panel
  and `mashroom-jobs history` read it back, the runs of every process included.

The store is one SQLite file. The extension and `mashroom-jobs run` use
`mashroom-jobs/store.sqlite` in the Jupyter data folder unless
`c.BackgroundJobService.store` names another (or `None`: runs stay in memory). This
notebook uses a temporary store, so that your own is left alone, shares it with a second
kernel that it starts itself, and restarts that kernel to read the history back.
"""),
    code("""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid

folder = tempfile.mkdtemp(prefix="mashroom-jobs-tour-")
store_path = os.path.join(folder, "store.sqlite")

# what c.BackgroundJobService... in ipython_kernel_config.py does
config = get_ipython().config.BackgroundJobService
config.store = store_path
config.timezone = "UTC"
config.disabled_plugins = ["Example heartbeat"]
"""),
    md("""
The store is read when the service starts, so we (re)load the extension to start one on
our store:
"""),
    code("""
# NBVAL_IGNORE_OUTPUT
%reload_ext mashroom_jobs
"""),
    code("""
import mashroom_jobs
from mashroom_jobs.testing import wait_for

service = mashroom_jobs.get_service()
print(service.store_path)
print(service.origin)

assert service.store_path == store_path
"""),
    md("""
`service.origin` is who this process is in the store: the host, the process id and, in a
kernel started by Jupyter, the kernel's id.

## A second kernel on the same store

`jupyter_client` starts a second kernel, as JupyterLab does for a second notebook (with a
connection file named after the kernel's id). `run_there` runs code in it and returns what
it printed.
"""),
    code("""
from jupyter_client import KernelManager

other_id = str(uuid.uuid4())
other = KernelManager(kernel_name="python3",
                      connection_file=os.path.join(folder, f"kernel-{other_id}.json"))
other.start_kernel(stderr=subprocess.DEVNULL)  # (its start-up warnings are not ours)
client = other.client()
client.start_channels()
client.wait_for_ready(timeout=60)

def run_there(code):
    printed = []

    def hook(message):
        if message["msg_type"] == "stream":
            printed.append(message["content"]["text"])
        elif message["msg_type"] == "error":
            printed.append("\\n".join(message["content"]["traceback"]))

    reply = client.execute_interactive(code, timeout=60, output_hook=hook)
    assert reply["content"]["status"] == "ok", "".join(printed)
    return "".join(printed)

START_THERE = f'''
config = get_ipython().config.BackgroundJobService
config.store = {store_path!r}
config.timezone = "UTC"
config.disabled_plugins = ["Example heartbeat"]
%reload_ext mashroom_jobs
import mashroom_jobs
other_service = mashroom_jobs.get_service()
'''
print(run_there(START_THERE + "print(other_service.origin)"), end="")
"""),
    md("""
Both kernels now schedule the same **exclusive** job, every second: the other kernel first,
then this one. At each fire both try to claim it in the store; one wins and runs it, the
other records a run that *ran elsewhere*. We wait until this kernel has seen five fires.
"""),
    code("""
run_there('''
refreshed = []
other_service.schedule_job("Refresh prices", "* * * * * *", lambda: refreshed.append(1),
                           exclusive=True)
''')

refreshed = []
job = service.schedule_job("Refresh prices", "* * * * * *", lambda: refreshed.append(1),
                           exclusive=True)
five_fires = threading.Event()

def on_state(change):
    if change.new.run_count + change.new.elsewhere_count >= 5:
        five_fires.set()

job.observe(on_state, names="state")
assert five_fires.wait(timeout=20)
job.pause()
run_there('other_service.get_job("Refresh prices").pause()')
assert service.wait_until_idle(timeout=10)
"""),
    md("""
Every fire this kernel saw either ran here or ran in the other kernel, never in both and
never in neither: the store kept each fire's run once.
"""),
    code("""
seen = [r for r in job.history if r.trigger == "schedule"]
here = [r for r in seen if not r.elsewhere]
elsewhere = [r for r in seen if r.elsewhere]

def stored_fires():
    return [r.scheduled_for for r in service.history("Refresh prices", limit=1000)
            if r.trigger == "schedule"]

# the other kernel writes its runs a moment after they end
assert wait_for(lambda: {r.scheduled_for for r in seen} <= set(stored_fires()), timeout=10)
stored = stored_fires()
print("every fire ran once:", len(stored) == len(set(stored)))
print("ran elsewhere is neither a failure nor a skip:",
      job.failure_count == 0 and job.skip_count == 0)

assert len(stored) == len(set(stored))
assert len(refreshed) == len(here) == job.run_count
assert all(r.origin != service.origin and " kernel " in r.origin for r in elsewhere)
"""),
    md("""
Which kernel won each fire is a race, so it differs from run to run. The stored history
(`service.history()`, newest first) has every run with its `origin`; a fire this kernel lost
shows in its own records as *ran elsewhere*, naming the winner:
"""),
    code("""
# NBVAL_IGNORE_OUTPUT
from mashroom_jobs.panel.format import origin_text

for run in service.history("Refresh prices", limit=8):
    who = "this kernel" if run.origin == service.origin else origin_text(run.origin)
    print(f"{run.scheduled_for:%H:%M:%S}  ran in {who}")
if elsewhere:
    print(elsewhere[-1])
"""),
    md("""
The panel shows the same: its header names the store, and a job's expanded row lists the
stored runs, this kernel's and the other kernel's marked ("ran in kernel 3f2a…").
"""),
    code("""
# NBVAL_IGNORE_OUTPUT
panel = mashroom_jobs.JobsPanel(service)
panel.button("Show details of Refresh prices").click()
panel
"""),
    md("""
A click (or `invoke_now()`) is never claimed: asked for here, it runs here.
"""),
    code("""
manual = job.invoke_now().result(timeout=10)

assert not manual.elsewhere and manual.trigger == "manual"
"""),
    md("""
## The history after a restart

A job's definition is not stored (a function cannot be), only its runs. We restart the
other kernel: its memory is gone, yet a new service on the same store reads every run back,
this kernel's included.
"""),
    code("""
other.restart_kernel(now=True)
client.wait_for_ready(timeout=60)

after_restart = json.loads(run_there(START_THERE + '''
import json
runs = other_service.history("Refresh prices", limit=1000)
print(json.dumps([r.scheduled_for.isoformat() for r in runs if r.trigger == "schedule"]))
'''))
print("the restarted kernel reads the same runs:",
      after_restart == [t.isoformat() for t in stored_fires()])

assert after_restart == [t.isoformat() for t in stored_fires()]
"""),
    md("""
`mashroom-jobs history` reads the store from a terminal (`--json` for every field), and
`mashroom-jobs store path|prune|vacuum` looks after it:
"""),
    code("""
# NBVAL_IGNORE_OUTPUT
# in a terminal: mashroom-jobs history "Refresh prices" --limit 5 --store PATH
command = [sys.executable, "-m", "mashroom_jobs", "history", "Refresh prices", "--limit", "5",
           "--store", store_path]
print(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
"""),
    md("""
## When the store cannot be used

A path that is not a SQLite file, a read-only file or folder, a schema from a newer
mashroom-jobs: the service refuses it at start, naming the path and the reason. (The
extension then says so in one warning line and keeps runs in memory, so the kernel still
starts.) A store that another process holds locked too long delays the writing of runs,
never the timer; an exclusive fire that cannot be claimed in `store_timeout` seconds runs
here anyway, its output saying `store unavailable, ran without claim`: better a duplicate
than a lost nightly run.
"""),
    code("""
prices = os.path.join(folder, "prices.csv")
with open(prices, "w") as f:
    f.write("name,price\\n" * 100)
try:
    mashroom_jobs.BackgroundJobService(store=prices)
except mashroom_jobs.StoreError as error:
    print(error)
"""),
    md("""
## Clean up
"""),
    code("""
panel.close()
client.stop_channels()
other.shutdown_kernel(now=True)
%unload_ext mashroom_jobs
del get_ipython().config.BackgroundJobService["store"]
shutil.rmtree(folder)

assert service.is_shut_down and not other.is_alive()
"""),
]

# --------------------------------------------------------------------------------------------
# 05 jobs on Dask
# --------------------------------------------------------------------------------------------

DASK = [
    md("""
# Running jobs on Dask

The scheduling stays in the kernel; the work can leave it. A job scheduled with
`executor=client` (a `distributed.Client`) runs its callback on a worker of that Dask
cluster: only the callback travels; timing, history and the panel stay here. What the
callback prints comes back in its run's record, with the worker's address.

This notebook starts a small `LocalCluster` (two worker processes). With
[dask-gateway](https://gateway.dask.org), dask-kubernetes or Coiled, pass the `Client`
they give you instead. It needs `pip install 'mashroom-jobs[dask]'`.
"""),
    LOAD,
    code("""
import threading

from distributed import Client, LocalCluster

import mashroom_jobs
from mashroom_jobs.testing import wait_for

service = mashroom_jobs.get_service()
%config BackgroundJobService.timezone = "UTC"
%config BackgroundJobService.disabled_plugins = ["Example heartbeat"]

cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
client = Client(cluster)
workers = sorted(client.scheduler_info()["workers"])
print(len(workers), "workers")

assert len(workers) == 2 and service.jobs == ()
"""),
    md("""
## A job on a worker

The job below sums squares on a worker. Its context there has no `shell`, and
`context.services.background_jobs` is None (the service stays in the kernel: a job that
needs it must run locally); `context.logger_factory` works, and a warning it logs ends up
in the run's output like a `print`.
"""),
    code("""
def crunch(context):
    total = sum(i * i for i in range(1_000_000))
    print(f"sum of squares: {total}")
    print("the service, on the worker:", context.services.background_jobs)
    context.logger_factory("crunch").warning("crunched")

crunching = service.schedule_job("Crunch", "0 * * * *", crunch, executor=client)
run = crunching.invoke_now().result(timeout=60)
print(run)
print("ran on", run.worker)
print(run.output)

assert run.success and run.worker in workers
assert run.output == (
    "sum of squares: 333332833333500000\\n"
    "the service, on the worker: None\\n"
    "crunched\\n"
)
assert crunching.remote and crunching.executor is None
"""),
    md("""
## Failures come back too

A job that raises on the worker records its error and traceback, as a local job does. A
callback that cannot be pickled (here a lambda holding a lock) never leaves the kernel: the
run fails, saying why, and the job keeps its schedule.
"""),
    code("""
def load_data():
    raise FileNotFoundError("s3://bucket/today.parquet")

loading = service.schedule_job("Load data", "0 6 * * *", load_data, executor=client)
failure = loading.invoke_now().result(timeout=60)
print(failure.error_message)
print(failure.traceback.splitlines()[-1])

lock = threading.Lock()
locked = service.schedule_job("Locked", "0 6 * * *", lambda: lock.locked(), executor=client)
unsent = locked.invoke_now().result(timeout=60)
print(unsent.error_message)

assert failure.worker in workers and "in load_data" in failure.traceback
assert unsent.error_message.startswith("could not be sent to the Dask cluster: ")
assert unsent.worker is None and locked.active and locked.next_invocation is not None
"""),
    md("""
## The service's own cluster: `dask_address`

`c.BackgroundJobService.dask_address` names a scheduler (`"tcp://host:8786"`), or `"local"`
for a `LocalCluster` the service starts on first use and closes when it shuts down; then
`executor="dask"` means that cluster (and a plugin's config may say `"executor": "dask"`).
The service connects in the background and, when the connection is lost, fails the runs
that find it away and connects again on a later one. An address that cannot be parsed is
refused when it is set:
"""),
    code("""
try:
    service.dask_address = "tcp://scheduler"
except Exception as exc:
    print(f"{type(exc).__name__}: {exc}")

service.dask_address = cluster.scheduler_address
ticks = service.schedule_job("Tick", "*/1 * * * * *", lambda: print("tick"), executor="dask")
assert wait_for(lambda: ticks.run_count >= 3, timeout=20)
ticks.pause()
assert service.wait_until_idle(timeout=20)

recent = ticks.history[-3:]
print([run.output for run in recent])
seconds = [run.scheduled_for.timestamp() for run in recent]

assert all(run.success and run.worker in workers for run in recent)
assert seconds == [seconds[0], seconds[0] + 1, seconds[0] + 2]  # every second, none lost
"""),
    md("""
Each run is a Dask task whose key names the job and the fire time, so the Dask dashboard
shows `mashroom-job-<name>-<time>` tasks:
"""),
    code("""
def own_key():
    from distributed import get_worker

    print(get_worker().get_current_task())

keyed = service.schedule_job("Report", "0 7 * * *", own_key, executor="dask")
print(keyed.invoke_now().result(timeout=60).output)
"""),
    md("""
The panel shows where each run ran, in the last-run column and in a job's history:
"""),
    code("""
# NBVAL_IGNORE_OUTPUT
service
"""),
    md("""
## Clean up

Unloading the extension unschedules the jobs and shuts the service down; the cluster is
ours to close.
"""),
    code("""
%unload_ext mashroom_jobs
client.close()
cluster.close()

assert service.is_shut_down and not crunching.active
"""),
]

NOTEBOOKS = {
    "01-getting-started.ipynb": GETTING_STARTED,
    "02-plugins.ipynb": PLUGINS,
    "03-async-errors-timezones.ipynb": ASYNC_ERRORS_TIMEZONES,
    "04-job-store.ipynb": JOB_STORE,
    "05-dask.ipynb": DASK,
}


def build(name: str, cells: list[nbf.NotebookNode]) -> Path:
    nb = nbf.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    # stable cell ids: rebuilding does not change every id in the diff
    prefix = name.split("-", 1)[0]
    nb.cells = []
    for index, cell in enumerate(cells):
        cell = nbf.from_dict(dict(cell))  # LOAD is shared: never alias a cell between notebooks
        cell["id"] = f"nb{prefix}-{index:02d}"
        nb.cells.append(cell)
    nbf.validate(nb)
    path = HERE / name
    nbf.write(nb, path)
    return path


def execute(path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
         "--inplace", "--ExecutePreprocessor.timeout=120",
         "--ExecutePreprocessor.store_widget_state=False", str(path)],
        check=True, cwd=HERE,
    )


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def tidy(path: Path) -> None:
    """Drop widget views from the stored outputs (nbval never compares them).

    A stored view of a closed panel renders as an error in JupyterLab; without it the
    reader of the stored notebook sees the text form (the jobs table), and running the
    notebook shows the live panel.  Outputs of ignored cells that only showed a widget
    go entirely: their text form (the widget's repr) says nothing useful.
    """
    nb = nbf.read(path, as_version=4)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        ignored = any(line.strip() == "# NBVAL_IGNORE_OUTPUT" for line in cell.source.splitlines())
        outputs = []
        for output in cell.outputs:
            data = output.get("data")
            if data is not None and WIDGET_VIEW in data:
                if ignored:
                    continue
                del data[WIDGET_VIEW]
            outputs.append(output)
        cell.outputs = outputs
    nbf.write(nb, path)


def main(argv: list[str]) -> int:
    run = "--execute" in argv
    # names given: only those notebooks (the others keep their stored outputs)
    only = [a for a in argv if not a.startswith("--")]
    unknown = sorted(set(only) - set(NOTEBOOKS))
    if unknown:
        print(f"no such notebook: {', '.join(unknown)}; known: {', '.join(NOTEBOOKS)}",
              file=sys.stderr)
        return 2
    for name, cells in NOTEBOOKS.items():
        if only and name not in only:
            continue
        path = build(name, cells)
        print(f"wrote {path.relative_to(HERE.parent)}")
        if run:
            execute(path)
            tidy(path)
            print(f"executed {path.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
