"""What the server extension's JSON API says, as plain functions of a service.

Kept apart from the handlers (tornado) so that the answers are testable without a server.
Times are ISO 8601 strings with their offset; a job's data is the definition's as stored
(its target's data included), plus where it stands: next fire, last run, hosts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..core.errors import JobNotScheduledError
from ..core.records import JobInvocation
from ..durable.facade import DurableInfo, HostInfo
from ..job import BackgroundJob
from ..service import BackgroundJobService

__all__ = ["ACTIONS", "act", "host_data", "job_data", "jobs_data", "run_data", "runs_data"]

#: what POST /mashroom-jobs/api/jobs/NAME/ACTION does
ACTIONS = ("run", "pause", "resume", "stop")
#: the most runs one answer lists
MAX_RUNS = 500


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def run_data(run: JobInvocation) -> dict[str, Any]:
    """One run (or a fire recorded without a run) as JSON (its output and traceback
    aside: the API lists many)."""
    return run.to_json(texts=False)


def host_data(host: HostInfo) -> dict[str, Any]:
    """One host, from its last heartbeat."""
    return {
        "id": host.id, "kind": host.kind, "machine": host.machine, "pid": host.pid,
        "origin": host.origin, "started": iso(host.started), "seen": iso(host.seen),
        "alive": host.alive, "jobs": list(host.jobs), "parked": dict(host.parked),
        **{key: value for key, value in host.details.items()
           if isinstance(value, (str, int, float, bool)) or value is None},
    }


def _here(job: BackgroundJob | None) -> dict[str, Any] | None:
    """How this process runs the job now (None: it does not host it)."""
    if job is None:
        return None
    return {"paused": job.paused, "running": job.running,
            "next_fire": iso(job.next_invocation)}


def _last_run(service: BackgroundJobService, name: str) -> dict[str, Any] | None:
    runs = service.history(name, 1)
    return run_data(runs[0]) if runs else None


def durable_data(service: BackgroundJobService, info: DurableInfo,
                 now: datetime) -> dict[str, Any]:
    """A durable job: its stored definition and where it stands."""
    definition = info.definition
    data: dict[str, Any] = {
        "name": info.name, "durable": True, "version": info.version,
        "changed": iso(info.changed), "changed_by": info.changed_by, "paused": info.paused,
        "error": info.error, "parked_on": dict(info.parked_on),
        "hosted_here": info.hosted_here,
    }
    if definition is not None:
        schedule = definition.schedule()
        data.update({
            "cron": definition.cron, "timezone": definition.timezone,
            "description": schedule.describe(), "target": definition.target.to_data(),
            "runs": definition.target.describe(), "timeout": definition.timeout,
            "retries": definition.retries, "retry_delay": definition.retry_delay,
            "overlap": definition.overlap, "catchup": definition.catchup.to_data(),
            "next_fire": None if definition.paused else iso(schedule.next_fire_time(now)),
        })
    job = service.get_job(info.name)
    data["here"] = _here(job if job is not None and job.durable else None)
    data["last_run"] = _last_run(service, info.name)
    return data


def local_data(service: BackgroundJobService, job: BackgroundJob) -> dict[str, Any]:
    """A job of this process that is not durable (a plugin's)."""
    last = job.last_invocation
    return {
        "name": job.name, "durable": False, "cron": job.cron_schedule,
        "timezone": job.timezone, "description": job.description, "paused": job.paused,
        "here": _here(job), "next_fire": iso(job.next_invocation),
        "last_run": run_data(last) if last is not None else None,
    }


def jobs_data(service: BackgroundJobService) -> list[dict[str, Any]]:
    """The store's durable jobs, then this process's other jobs, each by name."""
    now = service.now()
    durable = service.durable
    infos = durable.jobs() if durable is not None else []
    names = {info.name for info in infos}
    data = [durable_data(service, info, now) for info in infos]
    data += [local_data(service, job) for job in sorted(service.jobs, key=lambda j: j.name)
             if not job.durable and job.active and job.name not in names]
    return data


def job_data(service: BackgroundJobService, name: str) -> dict[str, Any]:
    """The job ``name`` as :func:`jobs_data` lists it (the store's durable job of that
    name, else this process's job), reading only that job.  Raises
    :class:`JobNotScheduledError` for an unknown name."""
    durable = service.durable
    if durable is not None:
        try:
            info = durable.get(name)
        except JobNotScheduledError:
            pass
        else:
            return durable_data(service, info, service.now())
    job = service.get_job(name)
    if job is None or job.durable or not job.active:
        raise JobNotScheduledError(f"no job named {name!r} in the store or in this server")
    return local_data(service, job)


def runs_data(service: BackgroundJobService, name: str | None, limit: int
              ) -> list[dict[str, Any]]:
    """The latest runs (of ``name``, or of every job), newest first."""
    return [run_data(run) for run in service.history(name, max(1, min(limit, MAX_RUNS)))]


def act(service: BackgroundJobService, name: str, action: str) -> dict[str, Any]:
    """Do ``action`` (one of :data:`ACTIONS`, or ``"unschedule"``) on the job ``name``:
    a durable job through the store (its hosts obey within about a second), a job of this
    process here.  Raises :class:`JobNotScheduledError` for an unknown name."""
    durable = service.durable
    is_durable = service.is_durable(name)
    job = service.get_job(name)
    if not is_durable and (job is None or not job.active):
        raise JobNotScheduledError(f"no job named {name!r} in the store or in this server")
    result: dict[str, Any] = {"job": name, "action": action, "durable": is_durable}
    if action == "run":
        if is_durable:
            assert durable is not None
            result["here"] = durable.run(name) is not None
        else:
            service.run_job(name)
            result["here"] = True
    elif action == "pause":
        service.pause_job(name)
    elif action == "resume":
        service.resume_job(name)
    elif action == "stop":
        result["stopped_here"] = service.stop_job(name)
    elif action == "unschedule":
        service.unschedule_job(name)
    else:
        raise ValueError(f"unknown action {action!r}: one of {', '.join(ACTIONS)}, or "
                         f"DELETE to unschedule")
    return result
