"""The server extension's JSON API, under the server's base URL::

    GET    /mashroom-jobs/api/jobs                  the durable jobs and the server's own
    GET    /mashroom-jobs/api/jobs/NAME             one job, with its recent runs
    POST   /mashroom-jobs/api/jobs/NAME/ACTION      run | pause | resume | stop
    DELETE /mashroom-jobs/api/jobs/NAME             unschedule (a durable job: remove it)
    GET    /mashroom-jobs/api/hosts                 every host of the store, alive or gone
    GET    /mashroom-jobs/api/runs?job=NAME&limit=N the latest runs, newest first

Every handler is a jupyter_server ``APIHandler`` behind ``@tornado.web.authenticated`` and
``@authorized`` (resource ``"mashroom_jobs"``): a request without a valid token or
session is refused with 403, and a server's authorizer decides who may read ("read") or
act ("write").  Store work runs on a thread, never on the server's event loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, TypeVar

import tornado.web
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin

from ..core.errors import JobNotScheduledError, MashroomJobsError, StoreUnavailableError
from ..service import BackgroundJobService
from . import api

__all__ = ["AUTH_RESOURCE", "handlers"]

#: the resource name a server's authorizer sees for this API
AUTH_RESOURCE = "mashroom_jobs"
PREFIX = "/mashroom-jobs/api"
T = TypeVar("T")


class _Base(ExtensionHandlerMixin, APIHandler):
    """What every handler shares: the service, errors as JSON, work off the loop."""

    auth_resource = AUTH_RESOURCE

    def _service(self) -> BackgroundJobService:
        app = self.extensionapp
        service: BackgroundJobService | None = getattr(app, "service", None)
        if service is None or service.is_shut_down:
            problem = getattr(app, "problem", None) or "the server is stopping"
            raise tornado.web.HTTPError(503, f"mashroom-jobs hosts no jobs here: {problem}")
        return service

    async def _call(self, work: Callable[[BackgroundJobService], T]) -> T:
        service = self._service()
        try:
            return await asyncio.to_thread(work, service)
        except JobNotScheduledError as exc:
            raise tornado.web.HTTPError(404, str(exc)) from None
        except StoreUnavailableError as exc:
            raise tornado.web.HTTPError(503, str(exc)) from None
        except (MashroomJobsError, ValueError, TypeError) as exc:
            raise tornado.web.HTTPError(400, str(exc)) from None

    def _send(self, data: Any) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))


class JobsHandler(_Base):
    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        self._send({"jobs": await self._call(api.jobs_data)})


class JobHandler(_Base):
    @tornado.web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        def one(service: BackgroundJobService) -> dict[str, Any]:
            return {**api.job_data(service, name), "recent_runs": api.runs_data(service, name, 20)}

        self._send(await self._call(one))

    @tornado.web.authenticated
    @authorized
    async def delete(self, name: str) -> None:
        self._send(await self._call(lambda service: api.act(service, name, "unschedule")))


class ActionHandler(_Base):
    @tornado.web.authenticated
    @authorized
    async def post(self, name: str, action: str) -> None:
        self._send(await self._call(lambda service: api.act(service, name, action)))


class HostsHandler(_Base):
    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        def hosts(service: BackgroundJobService) -> list[dict[str, Any]]:
            durable = service.durable
            return [api.host_data(h) for h in durable.hosts()] if durable is not None else []

        self._send({"hosts": await self._call(hosts)})


class RunsHandler(_Base):
    @tornado.web.authenticated
    @authorized
    async def get(self) -> None:
        name = self.get_argument("job", None)
        text = self.get_argument("limit", "50")
        try:
            limit = int(text)
        except ValueError:
            raise tornado.web.HTTPError(400, f"limit must be a whole number, got {text!r}"
                                        ) from None
        self._send({"runs": await self._call(lambda s: api.runs_data(s, name, limit))})


def handlers() -> list[tuple[str, type[_Base]]]:
    """The API's routes (relative to the server's base URL)."""
    actions = "|".join(api.ACTIONS)
    return [
        (f"{PREFIX}/jobs/?", JobsHandler),
        (f"{PREFIX}/jobs/(.+)/({actions})", ActionHandler),
        (f"{PREFIX}/jobs/(.+)", JobHandler),
        (f"{PREFIX}/hosts/?", HostsHandler),
        (f"{PREFIX}/runs/?", RunsHandler),
    ]
