"""Background-job plugins: discovery through entry points, and the loader.

A plugin is an entry point in the group ``mashroom_jobs.plugins``.  The entry
point's name is the plugin's name; its object is the *bootstrap* function,
Mashroom's ``background-job`` plugin translated to Python::

    # pyproject.toml
    [project.entry-points."mashroom_jobs.plugins"]
    "My background job" = "my_package.jobs:bootstrap"

    # my_package/jobs.py
    from mashroom_jobs import background_job_plugin

    @background_job_plugin(default_config={"cron_schedule": "0/5 * * * *", "y": 42})
    def bootstrap(plugin_name, plugin_config, context_holder):
        def job(context):
            context.logger_factory("my_package").info("y is %s", plugin_config["y"])
        return job

Discovery (:func:`discover`, reads ``importlib.metadata``) is separate from
loading (:func:`load_plugins`, takes entry points), so the loader can be
tested with hand-made :class:`importlib.metadata.EntryPoint` objects, as in
xarray's ``backends/plugins.py``.  Nothing is discovered at import time.

Every failure of one plugin (it cannot be imported, its bootstrap raises or
returns something not callable, its ``cron_schedule`` is invalid...) is
logged with the plugin's name and kept as a failed :class:`PluginRecord`; the
other plugins load regardless.
"""

from .declaring import (
    DEFAULT_CONFIG_ATTRIBUTE,
    ENTRY_POINT_GROUP,
    RESERVED_KEYS,
    PluginRecord,
    PluginSpec,
    PluginState,
    background_job_plugin,
)
from .loading import (
    PluginLoader,
    disabled_record,
    discover,
    inspect_plugin,
    load_plugin,
    load_plugins,
    schedule_arguments,
    unknown_plugin_names,
)
from .table import format_plugins_table

__all__ = [
    "DEFAULT_CONFIG_ATTRIBUTE",
    "ENTRY_POINT_GROUP",
    "RESERVED_KEYS",
    "PluginLoader",
    "PluginRecord",
    "PluginSpec",
    "PluginState",
    "background_job_plugin",
    "disabled_record",
    "discover",
    "format_plugins_table",
    "inspect_plugin",
    "load_plugin",
    "load_plugins",
    "schedule_arguments",
    "unknown_plugin_names",
]
