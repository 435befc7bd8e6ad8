"""A plugin module whose import fails: it needs a package nobody installed."""

import mashroom_jobs_missing_dependency  # noqa: F401


def bootstrap(plugin_name, plugin_config, holder):  # pragma: no cover - never imported
    return lambda: None
