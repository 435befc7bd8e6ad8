"""Broken background-job plugins: each fails in its own way, none may stop the others."""

from __future__ import annotations

from typing import Any

from mashroom_jobs import background_job_plugin


def bootstrap_raises(plugin_name: str, plugin_config: dict[str, Any], holder: Any) -> Any:
    raise RuntimeError("no database configured")


def bootstrap_returns_number(plugin_name: str, plugin_config: dict[str, Any], holder: Any) -> Any:
    return 42


@background_job_plugin(default_config={"cron_schedule": "61 * * * *"})
def bootstrap_with_bad_cron(plugin_name: str, plugin_config: dict[str, Any], holder: Any) -> Any:
    return lambda: None
