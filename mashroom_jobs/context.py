"""PluginContext: what a job (or a plugin's bootstrap) may need from its host.

Mirrors Mashroom's ``pluginContext``: ``context.services.background_jobs`` is
the service (Mashroom: ``pluginContext.services.backgroundJobs.service``) and
``context.logger_factory(name)`` returns a logger (``loggerFactory(category)``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .service import BackgroundJobService

__all__ = ["PluginContext", "PluginContextHolder", "PluginServices"]


def _logger_factory(name: str) -> logging.Logger:
    return logging.getLogger(name)


@dataclass(frozen=True)
class PluginServices:
    """The services a job can reach: only ``background_jobs`` for now."""

    background_jobs: BackgroundJobService


@dataclass(frozen=True)
class PluginContext:
    """Passed to a job's callback (when it takes one argument).

    Attributes
    ----------
    services : PluginServices
        ``services.background_jobs`` is the BackgroundJobService running the job.
    logger_factory : callable
        ``logger_factory(name)`` returns a standard :class:`logging.Logger`.
    shell : IPython shell or None
        The kernel's shell when the service runs in IPython, else None.
    """

    services: PluginServices
    logger_factory: Callable[[str], logging.Logger] = field(default=_logger_factory)
    shell: Any = None


class PluginContextHolder:
    """Handed to a plugin's bootstrap; ``get_plugin_context()`` returns the context.

    The context is looked up at call time, so a plugin that keeps the holder
    always sees the current one (Mashroom's ``pluginContextHolder``).
    """

    def __init__(self, service: BackgroundJobService) -> None:
        self._service = service

    def get_plugin_context(self) -> PluginContext:
        return self._service.context
