"""Shared fixtures. Time moves only through the ManualClock in unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mashroom_jobs import BackgroundJobService
from mashroom_jobs.testing import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock("2026-01-01T00:00:00+00:00")


@pytest.fixture
def service(clock: ManualClock) -> Iterator[BackgroundJobService]:
    svc = BackgroundJobService(clock=clock, timezone="UTC")
    yield svc
    svc.shutdown(wait=True, timeout=5)


@pytest.fixture
def panel(service: BackgroundJobService) -> Iterator[Any]:
    """A JobsPanel without the background flusher: tests call ``panel.flush()``."""
    from ipywidgets import Widget

    from mashroom_jobs.panel import JobsPanel

    jobs_panel = JobsPanel(service, auto_flush=False, callables={})
    yield jobs_panel
    jobs_panel.close()
    Widget.close_all()
