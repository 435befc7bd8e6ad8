"""Example heartbeat: a mashroom-jobs background-job plugin.

Installed, it is found through the entry point ``"Example heartbeat"`` in the
group ``mashroom_jobs.plugins`` (see pyproject.toml).  Every run logs and
prints a message and counts itself.
"""

from __future__ import annotations

from typing import Any

from mashroom_jobs import PluginContext, PluginContextHolder, background_job_plugin

#: the plugin names this module was bootstrapped under, in order (handy in tests)
BOOTSTRAPPED: list[str] = []
#: beats so far, by plugin name
BEATS: dict[str, int] = {}


@background_job_plugin(
    default_config={
        "cron_schedule": "*/5 * * * *",
        "invoke_immediately": False,
        "message": "still alive",
    }
)
def bootstrap(
    plugin_name: str, plugin_config: dict[str, Any], context_holder: PluginContextHolder
) -> Any:
    """Return the heartbeat job; ``plugin_config["message"]`` is what it says."""
    BOOTSTRAPPED.append(plugin_name)
    message = str(plugin_config["message"])
    logger = context_holder.get_plugin_context().logger_factory("mashroom_jobs_example")

    def heartbeat(context: PluginContext) -> None:
        BEATS[plugin_name] = BEATS.get(plugin_name, 0) + 1
        logger.info("%s: %s (beat %d)", plugin_name, message, BEATS[plugin_name])
        print(f"{plugin_name}: {message} (beat {BEATS[plugin_name]})")

    return heartbeat
