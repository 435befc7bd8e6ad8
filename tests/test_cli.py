"""The mashroom-jobs command, run as a real subprocess."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from mashroom_jobs.cli import AUTOLOAD_BEGIN

COMMAND = [sys.executable, "-m", "mashroom_jobs"]


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMMAND, *args], capture_output=True, text=True, timeout=60, env=env)


class _Process:
    """A running ``mashroom-jobs run``; collects its stderr lines from a thread."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [*COMMAND, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def wait_for_line(self, pattern: str, timeout: float = 20.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    match = re.search(pattern, line)
                    if match:
                        return match
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"no line matching {pattern!r} in:\n" + self.text)
                self._changed.wait(min(remaining, 0.1))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def stop(self, sig: int, timeout: float = 20.0) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "mashroom_jobs_config.py"
    path.write_text(text)
    return str(path)


# --- cron ------------------------------------------------------------------------------------


def test_cron_describes_an_expression_and_lists_its_next_fire_times_after_from() -> None:
    result = _run("cron", "30 2 * * *", "--tz", "Europe/Vienna", "-n", "3",
                  "--from", "2026-03-28T12:00")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "30 2 * * *: At 02:30",
        "Next 3 fire times after 2026-03-28T12:00:00+01:00 (Europe/Vienna):",
        "  2026-03-29T03:00:00+02:00  Sun",  # 02:30 does not exist that night (spring forward)
        "  2026-03-30T02:30:00+02:00  Mon",
        "  2026-03-31T02:30:00+02:00  Tue",
    ]


def test_cron_lists_the_fire_times_left_before_year_10000_and_says_there_are_no_more() -> None:
    result = _run("cron", "*/20 * * * * *", "--tz", "UTC", "--from", "9999-12-31T23:59")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines() == [
        "*/20 * * * * *: Every 20 seconds",
        "Next 2 fire times after 9999-12-31T23:59:00+00:00 (UTC):",
        "  9999-12-31T23:59:20+00:00  Fri",
        "  9999-12-31T23:59:40+00:00  Fri",
        "No more fire times: dates end with the year 9999.",
    ]


@pytest.mark.parametrize(
    ("expression", "start"),
    [("* * * * *", "9999-12-31T23:59"), ("0 0 29 2 *", "9996-03-01")],
    ids=["last-minute", "no-leap-day-left"],
)
def test_cron_after_the_last_fire_time_before_year_10000_says_there_is_none(
    expression: str, start: str
) -> None:
    result = _run("cron", expression, "--tz", "UTC", "--from", start)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"{expression}: ")
    assert lines[1] == (f"No fire time after {datetime.fromisoformat(start).isoformat()}+00:00 "
                        f"(UTC): dates end with the year 9999.")


def test_cron_without_from_lists_times_after_now() -> None:
    result = _run("cron", "@hourly", "--tz", "UTC")
    assert result.returncode == 0, result.stderr
    times = [line.split()[0] for line in result.stdout.splitlines()[2:]]
    assert len(times) == 5 and all(t.endswith(":00:00+00:00") for t in times)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["61 * * * *"], "Invalid cron expression '61 * * * *': minute 61 is out of range 0-59"),
        (["* * * *"], "expected 5 fields"),
        (["* * * * *", "--tz", "Mars/Base"], "Invalid time zone 'Mars/Base'"),
        (["* * * * *", "--from", "yesterday"], "invalid --from 'yesterday'"),
        (["* * * * *", "-n", "0"],
         "argument -n: expected a whole number from 1 to 10000, got '0'"),
        (["*/0 * * * *"], "Invalid cron expression '*/0 * * * *': "
                          "minute step '0' in '*/0' must be a positive whole number"),
        (["* * * * *", "--tz", "UTC", "--from", "0001-01-01T23:59"],
         "invalid --from '0001-01-01T23:59': fire times are listed after "
         "0001-01-02T00:00:00+00:00 at the earliest"),
    ],
    ids=["out-of-range", "four-fields", "bad-zone", "bad-from", "zero-times", "step-zero",
         "from-year-1"],
)
def test_cron_with_bad_input_prints_the_error_on_stderr_and_exits_2(
    args: list[str], message: str
) -> None:
    result = _run("cron", *args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("mashroom-jobs cron: ") and message in result.stderr
    assert "Traceback" not in result.stderr


def test_the_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "mashroom-jobs"
    if not script.exists():
        pytest.skip("the package is not installed with its console script")
    result = subprocess.run([str(script), "cron", "0 0 1 1 *", "-n", "1"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "January" in result.stdout


# --- plugins ---------------------------------------------------------------------------------


def test_plugins_lists_schedules_descriptions_next_fire_times_and_errors(
    plugin_dists: Any, tmp_path: Path
) -> None:
    env = plugin_dists.env(plugin_dists.example, plugin_dists.broken)
    config = _config(tmp_path, "c.BackgroundJobService.timezone = 'UTC'\n")
    result = _run("plugins", "--config", config, env=env)
    # broken plugins: exit status 1, so that a CI check can use it (issue 25)
    assert result.returncode == 1, result.stderr
    assert "cannot be loaded: 'Broken import', 'Broken schedule'" in result.stderr
    out = result.stdout
    assert "Example heartbeat  found     */5 * * * *\n      Every 5 minutes\n" in out
    assert len(re.findall(r"next: \d{4}-\d\d-\d\d \d\d:\d[05]:00 UTC", out)) == 3
    assert "Broken import      error" in out
    assert "No module named 'mashroom_jobs_missing_dependency'" in out
    assert "minute 61 is out of range 0-59" in out
    assert "from: mashroom-jobs-example 0.1.0 (mashroom_jobs_example:bootstrap)" in out


def test_plugins_applies_the_config_file(plugin_dists: Any, tmp_path: Path) -> None:
    config = _config(tmp_path, (
        "c.BackgroundJobService.plugin_config = "
        "{'Example heartbeat': {'cron_schedule': '0 9 * * 1-5', 'timezone': 'Asia/Tokyo'}}\n"
    ))
    result = _run("plugins", "--config", config, env=plugin_dists.env(plugin_dists.example))
    assert result.returncode == 0, result.stderr
    assert "0 9 * * 1-5" in result.stdout and "At 09:00, Monday through Friday" in result.stdout
    assert result.stdout.count(" JST") == 3


def _plugin_rows(stdout: str) -> dict[str, list[str]]:
    """The table of `plugins`: each plugin's row, split into name, state and schedule."""
    rows: dict[str, list[str]] = {}
    for line in stdout.splitlines()[1:]:
        if line.startswith("  ") and not line.startswith("    "):
            name, state, schedule = re.split(r"\s{2,}", line.strip())
            rows[name] = [state, schedule]
    return rows


def test_plugins_lists_a_disabled_plugin_as_disabled_with_where_it_comes_from(
    plugin_dists: Any, tmp_path: Path
) -> None:
    config = _config(tmp_path, "c.BackgroundJobService.disabled_plugins = ['Example heartbeat']\n")
    result = _run("plugins", "--config", config, env=plugin_dists.env(plugin_dists.example))
    assert result.returncode == 0, result.stderr
    assert _plugin_rows(result.stdout)["Example heartbeat"][0] == "disabled"
    # the record the service itself makes for a disabled plugin: no import, but its origin
    assert "from: mashroom-jobs-example 0.1.0 (mashroom_jobs_example:bootstrap)" in result.stdout
    assert "next:" not in result.stdout  # a disabled plugin never fires


def test_plugins_does_not_say_a_disabled_plugin_runs_once_at_load(
    plugin_dists: Any, tmp_path: Path
) -> None:
    config = _config(tmp_path, "c.BackgroundJobService.disabled_plugins = ['Example heartbeat']\n")
    result = _run("plugins", "--config", config, env=plugin_dists.env(plugin_dists.example))
    assert result.returncode == 0, result.stderr
    assert _plugin_rows(result.stdout)["Example heartbeat"] == ["disabled", "-"]


def test_plugins_says_the_schedule_of_an_unimportable_plugin_is_unknown(
    plugin_dists: Any, tmp_path: Path
) -> None:
    result = _run("plugins", env=plugin_dists.env(plugin_dists.broken))
    assert result.returncode == 1, result.stderr
    assert _plugin_rows(result.stdout)["Broken import"] == ["error", "(unknown)"]


def test_plugins_says_which_configured_names_are_not_installed_and_exits_1(
    plugin_dists: Any, tmp_path: Path
) -> None:
    config = _config(tmp_path, (
        "c.BackgroundJobService.plugin_config = {'Example hearbeat': {'timeout': 5}}\n"
        "c.BackgroundJobService.disabled_plugins = ['Nothing like it']\n"))
    result = _run("plugins", "--config", config, env=plugin_dists.env(plugin_dists.example))
    assert result.returncode == 1
    assert ("plugin_config names 'Example hearbeat', which is not an installed background-job "
            "plugin; did you mean 'Example heartbeat'?") in result.stderr
    assert ("disabled_plugins names 'Nothing like it', which is not an installed "
            "background-job plugin; installed: 'Example heartbeat'") in result.stderr


# --- run -------------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_run_runs_plugins_logs_each_run_and_stops_cleanly_on_a_signal(
    plugin_dists: Any, tmp_path: Path, sig: int
) -> None:
    config = _config(tmp_path, (
        "c.BackgroundJobService.plugin_config = "
        "{'Example heartbeat': {'invoke_immediately': True, 'message': 'from the test'}}\n"
    ))
    env = plugin_dists.env(plugin_dists.example, plugin_dists.broken)
    process = _Process("run", "--config", config, "--shutdown-timeout", "5", env=env)
    try:
        process.wait_for_line(r"running 1 background job: 'Example heartbeat'")
        process.wait_for_line(r"job 'Example heartbeat' ran in [\d.]+ ms \(immediate\)")
        process.wait_for_line(r"job 'Example heartbeat' output: Example heartbeat: from the test")
        code = process.stop(sig)
    finally:
        process.kill()
    assert code == 0, process.text
    text = process.text
    assert f"received {signal.Signals(sig).name}: stopping" in text
    assert text.rstrip().endswith("stopped")
    assert "Background job plugin 'Broken bootstrap' failed: bootstrap raised RuntimeError" in text
    assert "Traceback" not in text


def _hanging_plugin(folder: Path) -> Path:
    """A real installed plugin (a dist-info with an entry point) whose job never ends."""
    folder.mkdir()
    (folder / "hanging_plugin.py").write_text(
        "import threading\n"
        "from mashroom_jobs import background_job_plugin\n"
        "@background_job_plugin(default_config={'cron_schedule': '0 0 1 1 *',\n"
        "                                       'invoke_immediately': True})\n"
        "def bootstrap(name, config, holder):\n"
        "    def hang():\n"
        "        print('hanging', flush=True)\n"
        "        threading.Event().wait()\n"
        "    return hang\n"
    )
    dist = folder / "hanging_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: hanging-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[mashroom_jobs.plugins]\nHanging = hanging_plugin:bootstrap\n")
    return folder


def test_run_says_which_job_it_abandoned_when_the_shutdown_timeout_passes(
    plugin_dists: Any, tmp_path: Path
) -> None:
    env = plugin_dists.env(_hanging_plugin(tmp_path / "plugins"))
    process = _Process("run", "--shutdown-timeout", "0.5", env=env)
    try:
        process.wait_for_line(r"running \d+ background jobs?: .*'Hanging'")
        time.sleep(0.5)  # the immediate run has started (and hangs)
        code = process.stop(signal.SIGTERM)
    finally:
        process.kill()
    assert code == 0, process.text
    assert ("job 'Hanging' was still running after --shutdown-timeout 0.5 s: it is abandoned"
            in process.text)


def test_run_serves_prometheus_metrics_while_running(plugin_dists: Any, tmp_path: Path) -> None:
    pytest.importorskip("prometheus_client")
    config = _config(tmp_path, (
        "c.BackgroundJobService.plugin_config = "
        "{'Example heartbeat': {'invoke_immediately': True}}\n"
    ))
    env = plugin_dists.env(plugin_dists.example)
    process = _Process("run", "--config", config, "--metrics-port", "0", env=env)
    try:
        url = process.wait_for_line(r"serving metrics on (http://127\.0\.0\.1:\d+/metrics)")[1]
        process.wait_for_line(r"job 'Example heartbeat' ran")
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read().decode()
        code = process.stop(signal.SIGTERM)
    finally:
        process.kill()
    assert code == 0, process.text
    assert "mashroom_background_jobs_total 1.0" in body
    assert "mashroom_background_jobs_failed 0.0" in body
    assert ('mashroom_background_jobs_invocations_total{job="Example heartbeat",'
            'outcome="success"} 1.0') in body
    assert 'mashroom_background_jobs_duration_seconds_count{job="Example heartbeat"} 1.0' in body


def test_run_exits_non_zero_when_no_plugin_can_be_loaded(
    plugin_dists: Any, tmp_path: Path
) -> None:
    # disable the example too, in case it is also installed in the environment itself
    config = _config(tmp_path, "c.BackgroundJobService.disabled_plugins = ['Example heartbeat']\n")
    result = subprocess.run(  # (with a store it would go on, hosting its durable jobs)
        [*COMMAND, "run", "--config", config, "--store", "none"], capture_output=True,
        text=True, timeout=60, env=plugin_dists.env(plugin_dists.broken),
    )
    assert result.returncode == 1
    assert re.search(r"no background-job plugin could be loaded: \d+ installed, [1-9]\d* failed, "
                     r"1 disabled \('Example heartbeat', by c\.BackgroundJobService\."
                     r"disabled_plugins\)", result.stderr), result.stderr
    assert "Background job plugin 'Broken import' failed" in result.stderr


def test_run_with_every_plugin_disabled_says_they_are_disabled(
    plugin_dists: Any, tmp_path: Path
) -> None:
    config = _config(tmp_path, (
        "from mashroom_jobs.plugins import discover\n"
        "c.BackgroundJobService.disabled_plugins = [ep.name for ep in discover()]\n"
    ))
    result = subprocess.run(
        [*COMMAND, "run", "--config", config, "--store", "none"], capture_output=True,
        text=True, timeout=60, env=plugin_dists.env(plugin_dists.example),
    )
    assert result.returncode == 1
    match = re.search(r"no background-job plugin could be loaded: (\d+) installed, 0 failed, "
                      r"(\d+) disabled \(([^)]*)\)", result.stderr)
    assert match is not None, result.stderr
    assert match[1] == match[2] != "0"
    assert "'Example heartbeat'" in match[3]


def test_run_without_any_plugin_installed_says_so(tmp_path: Path) -> None:
    code = (
        "import sys, mashroom_jobs.plugins.loading as plugins\n"
        "plugins.discover = lambda group=plugins.ENTRY_POINT_GROUP: []\n"
        "from mashroom_jobs.cli import main\n"
        "sys.exit(main(['run', '--store', 'none']))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1
    assert ("no background-job plugin is installed "
            "(none in the entry-point group 'mashroom_jobs.plugins'), and there is no job "
            "store to host durable jobs from") in result.stderr
    assert "0 failed" not in result.stderr


def test_run_with_metrics_port_but_without_prometheus_client_is_a_clear_error(
    plugin_dists: Any,
) -> None:
    code = (
        "import sys; sys.modules['prometheus_client'] = None;"
        "from mashroom_jobs.cli import main; sys.exit(main(['run', '--metrics-port', '9999']))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, env=plugin_dists.env(plugin_dists.example))
    assert result.returncode == 2
    assert ("mashroom-jobs run: --metrics-port needs prometheus-client: "
            "pip install 'mashroom-jobs[metrics]'") in result.stderr
    assert "Example heartbeat" not in result.stderr  # nothing was loaded


def _one_line_usage_error(result: subprocess.CompletedProcess[str], prefix: str) -> str:
    """The single stderr line of a usage error (exit 2), after checking there is one."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(prefix), lines[0]
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--metrics-port", "70000"], "argument --metrics-port: expected a port number "
                                      "from 1 to 65535 (or 0: any free port), got '70000'"),
        (["--metrics-port", "-1"], "argument --metrics-port: expected a port number "
                                   "from 1 to 65535 (or 0: any free port), got '-1'"),
        (["--metrics-port", "٩٠٩٠"], "got '٩٠٩٠'"),  # int() reads Arabic-Indic digits as 9090
        (["--metrics-port", "9_090"], "got '9_090'"),  # and int() ignores the underscore
        (["--shutdown-timeout", "nan"], "argument --shutdown-timeout: expected a number of "
                                        "seconds from 0 to 86400 such as 10 or 2.5, got 'nan'"),
        (["--shutdown-timeout", "inf"], "got 'inf'"),
        (["--shutdown-timeout", "1" + "0" * 20], "got '100000000000000000000'"),  # OverflowError
        (["--shutdown-timeout", "-1"], "got '-1'"),
        (["--shutdown-timeout", "١٠"], "got '١٠'"),
        (["--config", "a.py", "--config", "b.py"],
         "argument --config: given twice ('a.py', then 'b.py'); give it once"),
        (["--metrics-host", "::1", "--metrics-host", "127.0.0.1"],
         "argument --metrics-host: given twice"),
    ],
    ids=["port-too-large", "port-negative", "port-arabic-indic-digits", "port-underscore",
         "timeout-nan", "timeout-inf", "timeout-too-long", "timeout-negative",
         "timeout-arabic-indic-digits",
         "config-twice", "host-twice"],
)
def test_run_with_a_bad_flag_says_so_in_one_line_before_loading_anything(
    plugin_dists: Any, args: list[str], message: str
) -> None:
    result = _run("run", *args, env=plugin_dists.env(plugin_dists.example))
    line = _one_line_usage_error(result, "mashroom-jobs run: ")
    assert message in line
    assert "Example heartbeat" not in result.stderr  # no plugin was loaded


def test_run_with_a_metrics_port_in_use_fails_before_loading_any_plugin(
    plugin_dists: Any,
) -> None:
    pytest.importorskip("prometheus_client")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _run("run", "--metrics-port", str(port),
                      env=plugin_dists.env(plugin_dists.example))
    line = _one_line_usage_error(result, f"mashroom-jobs run: cannot serve metrics on "
                                         f"127.0.0.1:{port}: ")
    assert "in use" in line
    assert "Example heartbeat" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-n", "٣"], "argument -n: expected a whole number from 1 to 10000, got '٣'"),
        (["-n", "３"], "got '３'"),
        (["-n", "+3"], "got '+3'"),
        (["-n", "10001"], "got '10001'"),
        (["-n", "-5"], "got '-5'"),
        (["--tz", "UTC", "--tz", "Europe/Vienna"],
         "argument --tz: given twice ('UTC', then 'Europe/Vienna'); give it once"),
        (["-n", "3", "-n", "4"], "argument -n: given twice ('3', then '4'); give it once"),
        (["--from", "2026-01-01", "--from", "2027-01-01"], "argument --from: given twice"),
    ],
    ids=["n-arabic-indic", "n-full-width", "n-plus-sign", "n-too-many", "n-negative",
         "tz-twice", "n-twice", "from-twice"],
)
def test_cron_with_a_bad_flag_says_so_in_one_line(args: list[str], message: str) -> None:
    line = _one_line_usage_error(_run("cron", "* * * * *", *args), "mashroom-jobs cron: ")
    assert message in line


def test_plugins_with_config_given_twice_is_an_error(tmp_path: Path) -> None:
    first, second = _config(tmp_path, ""), str(tmp_path / "other.py")
    line = _one_line_usage_error(_run("plugins", "--config", first, "--config", second),
                                 "mashroom-jobs plugins: ")
    assert f"argument --config: given twice ({first!r}, then {second!r}); give it once" in line


def test_a_missing_command_or_an_unknown_flag_is_a_one_line_error() -> None:
    line = _one_line_usage_error(_run(), "mashroom-jobs: ")
    assert "COMMAND" in line and "--help" in line
    line = _one_line_usage_error(_run("run", "--no-such-flag"), "mashroom-jobs: ")
    assert "unrecognized arguments: --no-such-flag" in line


# --- autoload --------------------------------------------------------------------------------


def _ipython_env(ipython_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["IPYTHONDIR"] = str(ipython_dir)
    return env


def _extensions(config_file: Path) -> list[str]:
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader(config_file.name, str(config_file.parent)).load_config()
    value = config.InteractiveShellApp.extensions
    return list(value.get_value([]) if hasattr(value, "get_value") else value)


def test_autoload_enable_and_disable_are_idempotent_and_keep_other_settings(
    tmp_path: Path,
) -> None:
    env = _ipython_env(tmp_path / "ipython")
    config_file = tmp_path / "ipython" / "profile_default" / "ipython_kernel_config.py"
    config_file.parent.mkdir(parents=True)
    original = (
        "c = get_config()  # noqa\n"
        "c.InteractiveShellApp.extensions = ['autoreload']\n"
        "c.IPKernelApp.matplotlib = 'inline'"  # no final newline
    )
    config_file.write_text(original)

    first = _run("autoload", "enable", env=env)
    assert first.returncode == 0 and str(config_file) in first.stdout
    after_enable = config_file.read_text()
    second = _run("autoload", "enable", env=env)
    assert second.returncode == 0 and "already" in second.stdout
    assert config_file.read_text() == after_enable
    assert after_enable.startswith(original)
    assert _extensions(config_file) == ["autoreload", "mashroom_jobs"]

    assert _run("autoload", "disable", env=env).returncode == 0
    assert config_file.read_text() == original + "\n"
    again = _run("autoload", "disable", env=env)
    assert again.returncode == 0 and "nothing to do" in again.stdout
    assert _extensions(config_file) == ["autoreload"]


def test_autoload_creates_the_profile_config_of_a_named_profile(tmp_path: Path) -> None:
    env = _ipython_env(tmp_path / "ipython")
    result = _run("autoload", "enable", "--profile", "jobs", env=env)
    assert result.returncode == 0, result.stderr
    config_file = tmp_path / "ipython" / "profile_jobs" / "ipython_kernel_config.py"
    assert _extensions(config_file) == ["mashroom_jobs"]
    assert not (tmp_path / "ipython" / "profile_default" / "ipython_kernel_config.py").exists()


def test_a_kernel_app_with_the_autoload_config_loads_the_extension(tmp_path: Path) -> None:
    env = _ipython_env(tmp_path / "ipython")
    assert _run("autoload", "enable", env=env).returncode == 0
    # the real IPKernelApp reads the profile's config (and stops before it binds any socket)
    assert "mashroom_jobs" in _kernel_extensions(env)


def _kernel_extensions(env: dict[str, str]) -> list[str]:
    """The extensions a real IPKernelApp would load with this environment's profile."""
    code = (
        "from ipykernel.kernelapp import IPKernelApp\n"
        "app = IPKernelApp()\n"
        "app.init_profile_dir()\n"
        "app.load_config_file()\n"
        "print(repr(list(app.extensions)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    extensions: list[str] = eval(result.stdout.strip().splitlines()[-1])
    return extensions


_USER_LINES = {
    "readme-line": 'c.InteractiveShellApp.extensions.append("mashroom_jobs")\n',
    "assignment": "c.InteractiveShellApp.extensions = ['autoreload', 'mashroom_jobs']\n",
    "kernel-app-extend": "c.IPKernelApp.extensions.extend(['mashroom_jobs'])\n",
    "insert": "c.InteractiveShellApp.extensions.insert(0, 'mashroom_jobs')\n",
}


def _profile_with(tmp_path: Path, line: str) -> tuple[dict[str, str], Path]:
    env = _ipython_env(tmp_path / "ipython")
    config_file = tmp_path / "ipython" / "profile_default" / "ipython_kernel_config.py"
    config_file.parent.mkdir(parents=True)
    config_file.write_text("c = get_config()  # noqa\n" + line)
    return env, config_file


@pytest.mark.parametrize("line", list(_USER_LINES.values()), ids=list(_USER_LINES))
def test_autoload_enable_names_the_users_own_line_that_already_loads_the_extension(
    tmp_path: Path, line: str
) -> None:
    env, config_file = _profile_with(tmp_path, line)
    assert "mashroom_jobs" in _kernel_extensions(env)
    result = _run("autoload", "enable", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"mashroom_jobs is already loaded at kernel start by line 2 of {config_file}: "
        f"{line.strip()}"
    )
    assert config_file.read_text() == "c = get_config()  # noqa\n" + line  # unchanged


def test_autoload_enable_finds_a_list_written_over_several_lines(tmp_path: Path) -> None:
    env, config_file = _profile_with(tmp_path, (
        "c.InteractiveShellApp.extensions = [\n"
        "    'autoreload',\n"
        "    'mashroom_jobs',\n"
        "]\n"
    ))
    result = _run("autoload", "enable", env=env)
    assert result.returncode == 0, result.stderr
    assert f"already loaded at kernel start by lines 2-5 of {config_file}" in result.stdout
    assert AUTOLOAD_BEGIN not in config_file.read_text()


@pytest.mark.parametrize(
    "line",
    [
        '# c.InteractiveShellApp.extensions.append("mashroom_jobs")\n',
        'c.InteractiveShellApp.extensions.remove("mashroom_jobs")\n',
        'c.InteractiveShellApp.extensions.append("mashroom_jobs_extra")\n',
        'print("c.InteractiveShellApp.extensions.append(\'mashroom_jobs\')")\n',
    ],
    ids=["commented-out", "remove", "another-extension", "in-a-string"],
)
def test_autoload_enable_adds_its_block_when_no_line_of_the_user_loads_the_extension(
    tmp_path: Path, line: str
) -> None:
    env, config_file = _profile_with(tmp_path, line)
    result = _run("autoload", "enable", env=env)
    assert result.returncode == 0, result.stderr
    assert "will be loaded at kernel start: added to" in result.stdout
    assert AUTOLOAD_BEGIN in config_file.read_text()


def test_autoload_disable_refuses_to_claim_success_while_the_users_line_loads_it(
    tmp_path: Path,
) -> None:
    env, config_file = _profile_with(tmp_path, _USER_LINES["readme-line"])
    before = config_file.read_text()
    result = _run("autoload", "disable", env=env)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"mashroom-jobs autoload: mashroom_jobs is loaded at kernel start by line 2 of "
        f"{config_file}: {_USER_LINES['readme-line'].strip()}; `mashroom-jobs autoload enable` "
        f"did not write that line, so it is left alone: remove it to stop loading the extension"
    ]
    assert config_file.read_text() == before
    assert "mashroom_jobs" in _kernel_extensions(env)  # what the message says is true


def test_autoload_disable_removes_only_its_own_block_and_says_the_users_line_remains(
    tmp_path: Path,
) -> None:
    env, config_file = _profile_with(tmp_path, "")
    assert _run("autoload", "enable", env=env).returncode == 0
    with config_file.open("a") as f:  # the user adds the README's line afterwards
        f.write(_USER_LINES["readme-line"])
    result = _run("autoload", "disable", env=env)
    assert result.returncode == 1
    text = config_file.read_text()
    assert AUTOLOAD_BEGIN not in text and _USER_LINES["readme-line"] in text
    line_number = text.splitlines().index(_USER_LINES["readme-line"].strip()) + 1
    assert result.stderr.splitlines() == [
        f"mashroom-jobs autoload: removed the block `mashroom-jobs autoload enable` wrote from "
        f"{config_file}, but mashroom_jobs is still loaded at kernel start by line "
        f"{line_number} of {config_file}: {_USER_LINES['readme-line'].strip()}; remove that "
        f"line to stop loading the extension"
    ]
    assert _kernel_extensions(env) == ["mashroom_jobs"]


@pytest.mark.parametrize("action", ["enable", "disable"])
def test_autoload_with_ipythondir_pointing_to_a_file_fails_naming_it(
    tmp_path: Path, action: str
) -> None:
    not_a_folder = tmp_path / "ipython"
    not_a_folder.write_text("")
    result = _run("autoload", action, env=_ipython_env(not_a_folder))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"mashroom-jobs autoload: IPYTHONDIR is {str(not_a_folder)!r}, which IPython cannot "
        f"use (it is a file, not a folder): it would put the profile in a new temporary folder "
        f"that no kernel reads; point IPYTHONDIR at a folder you can write to"
    ]


def test_autoload_with_ipythondir_inside_a_file_fails_naming_it(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    inside = tmp_path / "file" / "ipython"
    result = _run("autoload", "enable", env=_ipython_env(inside))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"mashroom-jobs autoload: IPYTHONDIR is {str(inside)!r}, which IPython cannot use "
        f"(its parent {str(tmp_path / 'file')!r} is not a folder you can write to): it would "
        f"put the profile in a new temporary folder that no kernel reads; point IPYTHONDIR at "
        f"a folder you can write to"
    ]


def test_autoload_with_a_config_file_that_is_not_python_fails_naming_the_line(
    tmp_path: Path,
) -> None:
    env, config_file = _profile_with(tmp_path, "c.InteractiveShellApp.extensions = [\n")
    before = config_file.read_text()
    result = _run("autoload", "enable", env=env)
    assert result.returncode == 2
    line = result.stderr.strip()
    assert line.startswith(f"mashroom-jobs autoload: {config_file}, line 2: ")
    assert line.endswith("the file is not valid Python, so it cannot be checked; fix it first")
    assert config_file.read_text() == before


@pytest.mark.parametrize("profile", ["../x", ".hidden", "", "a\x00b"],
                         ids=["parent", "dot", "empty", "nul"])
def test_autoload_with_an_invalid_profile_name_is_a_usage_error(
    tmp_path: Path, profile: str
) -> None:
    code = ("import sys\nfrom mashroom_jobs.cli import main\n"
            f"sys.exit(main(['autoload', 'enable', '--profile', {profile!r}]))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, env=_ipython_env(tmp_path / "ipython"))
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"mashroom-jobs autoload: invalid profile name {profile!r}")
    assert "Traceback" not in result.stderr
