"""Shared fixtures. Time moves only through the ManualClock in unit tests."""

from __future__ import annotations

from collections.abc import Iterator

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
