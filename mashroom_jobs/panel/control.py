"""The control room's half that comes from the job store: the durable jobs this process does
not host (:class:`StoredJob`, shown as rows beside the kernel's own jobs) and the hosts
sharing the store, read by :class:`StoreView`.

A durable job the kernel hosts is one of its own jobs already (a
:class:`~mashroom_jobs.BackgroundJob` whose ``durable`` is True): its row is the usual one,
marked, and its verbs act through the store.  The others (parked here with the error, or
in a kernel that hosts no durable jobs) are a :class:`StoredJob` each: what the store
says of it, its next fire computed from its definition, its recent runs from the store's
history; its buttons act through ``service.durable``, and the hosts that run it obey
within about a second.

:class:`StoreView` reads the store at most every ``interval`` seconds, and the definitions
and histories only when the store changed (its ``data_version``).  Nothing here touches a
widget: the panel's flush asks and renders.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from ..core.cron import CronSchedule
from ..core.errors import MashroomJobsError
from ..core.records import JobInvocation, JobState
from ..durable.facade import DurableInfo, HostInfo
from ..job import BackgroundJob
from ..service import BackgroundJobService
from . import format as fmt

__all__ = ["HostsSummary", "Listed", "StoreView", "StoredJob"]

#: the most durable jobs of the store listed (the others are counted in the header)
MAX_STORED_JOBS = 500


class StoredJob:  # (Listed, below, is what a panel lists: this or a BackgroundJob)
    """A durable job of the store that this process does not host: what its row shows.

    Its fields are replaced as a whole by :meth:`update` (on the panel's flush), so a row
    reads one coherent version of them.
    """

    durable = True
    hosted_here = False
    active = True

    def __init__(self, name: str) -> None:
        self.name = name
        self.info: DurableInfo | None = None
        self.schedule: CronSchedule | None = None
        self.cron_schedule: str | None = None
        self.description = ""
        self.timezone = "UTC"
        self.runs: tuple[JobInvocation, ...] = ()
        self._state = JobState()

    @property
    def state(self) -> JobState:
        return self._state

    @property
    def history(self) -> tuple[JobInvocation, ...]:
        """Its latest runs in the store (any process's), oldest first."""
        return self.runs

    @property
    def paused(self) -> bool:
        return self._state.paused

    @property
    def running(self) -> bool:
        return False  # (the store does not say; Stop asks every host anyway)

    @property
    def error(self) -> str | None:
        """Why it is parked here (or cannot be read), or None."""
        return self.info.error if self.info is not None else None

    @property
    def failing(self) -> bool:
        last = self._state.last_invocation
        return last is not None and last.outcome.failed

    def update(self, info: DurableInfo, runs: list[JobInvocation], now: datetime) -> bool:
        """Take the store's word (``runs`` newest first); True when what a row shows
        changed."""
        definition = info.definition
        next_fire = None
        if definition is not None:
            if self.schedule is None or (self.cron_schedule, self.timezone) != (
                    definition.cron, definition.timezone):
                self.schedule = definition.schedule()
                self.cron_schedule = definition.cron
                self.description = self.schedule.describe()
                self.timezone = definition.timezone
            if not info.paused:
                next_fire = self.schedule.next_fire_time(now)
        runs_tuple = tuple(reversed(runs))  # oldest first, as a job's history
        last = runs_tuple[-1] if runs_tuple else None
        run_count, failure_count = run_counts(runs_tuple)
        state = JobState(paused=info.paused, next_invocation=next_fire, last_invocation=last,
                         run_count=run_count, failure_count=failure_count)
        changed = (state != self._state or info != self.info or runs_tuple != self.runs)
        self.info, self._state, self.runs = info, state, runs_tuple
        return changed

    def __repr__(self) -> str:
        return f"<StoredJob {self.name!r}>"


def run_counts(runs: Iterable[JobInvocation]) -> tuple[int, int]:
    """How many of ``runs`` ran (not skipped, missed or run elsewhere), and how many of
    those failed: a row's counts when its runs come from the store."""
    ran = [run.outcome for run in runs if run.outcome.ran]
    return len(ran), sum(outcome.failed for outcome in ran)


#: what a panel lists: a job of this process, or a durable job of the store hosted elsewhere
Listed = BackgroundJob | StoredJob


@dataclass(frozen=True)
class HostsSummary:
    """The hosts of the store as the panel shows them."""

    html: str
    alive: int
    gone: int


class StoreView:
    """What the store says beyond this process's own jobs (see the module docstring).

    Parameters
    ----------
    service : BackgroundJobService
        The panel's service (its ``durable`` facade and ``history``).
    interval : float
        Seconds between two reads of the store (monotonic, the service's clock).
    runs : int
        Runs read per stored job (its strip).
    """

    def __init__(self, service: BackgroundJobService, interval: float = 2.0,
                 runs: int = fmt.STRIP_RUNS) -> None:
        self._service = service
        self.interval = interval
        self._runs = runs
        self._last_read = float("-inf")
        self._version: object = None
        self._stale = False
        self._jobs: dict[str, StoredJob] = {}
        self._runs_of: dict[str, tuple[JobInvocation, ...]] = {}
        self.hosts: list[HostInfo] = []
        #: the durable jobs hosted here, with the store's word on them (hosts parked on)
        self.hosted: dict[str, DurableInfo] = {}
        self.problem: str | None = None

    @property
    def active(self) -> bool:
        """Whether there is a store to read."""
        return self._service.durable is not None

    def jobs(self) -> list[StoredJob]:
        """The stored jobs not hosted here, by name."""
        return list(self._jobs.values())

    def invalidate(self) -> None:
        """This process changed the store: read it at the next :meth:`read`, due or not."""
        self._stale = True

    def read(self) -> tuple[bool, set[Listed]]:
        """Read the store if due (every :attr:`interval`, and after :meth:`invalidate`):
        (whether the list of stored jobs changed, the jobs whose row must be drawn again:
        stored ones, and durable jobs hosted here whose runs in the store changed).
        Never raises: a store that cannot be read is said in :attr:`problem`."""
        durable = self._service.durable
        if durable is None:
            return False, set()
        clock = self._service.clock
        mono = clock.monotonic()
        force, self._stale = self._stale, False
        if not force and mono - self._last_read < self.interval:
            return False, set()
        self._last_read = mono
        try:
            self.hosts = durable.hosts()
            # new runs or definitions, or a host that parked a job, hosts another or went
            # away (its heartbeat says so): not a heartbeat that says what the last one did
            version = (self._service.history_version(),
                       sorted((h.origin, h.alive, h.jobs, tuple(sorted(h.parked.items())))
                              for h in self.hosts))
            if not force and version == self._version:
                self.problem = None
                return False, set()
            infos = durable.jobs(self.hosts)[:MAX_STORED_JOBS]
            now = self._service.now()
            structure = False
            dirty: set[Listed] = set()
            names = set()
            self.hosted = {i.name: i for i in infos if i.hosted_here}
            runs_of: dict[str, tuple[JobInvocation, ...]] = {}
            for info in infos:
                runs = self._service.history(info.name, self._runs)
                runs_of[info.name] = tuple(reversed(runs))
                if info.hosted_here:
                    job_here = self._service.get_job(info.name)
                    if job_here is not None and runs_of[info.name] != self._runs_of.get(
                            info.name):
                        dirty.add(job_here)
                    continue
                names.add(info.name)
                job = self._jobs.get(info.name)
                if job is None:
                    job = self._jobs[info.name] = StoredJob(info.name)
                    structure = True
                if job.update(info, runs, now):
                    dirty.add(job)
            self._runs_of = runs_of
            for name in [n for n in self._jobs if n not in names]:
                del self._jobs[name]
                structure = True
            self._version = version
            self.problem = None
            return structure, dirty
        except (MashroomJobsError, OSError) as exc:
            self.problem = f"Could not read the job store: {exc}"
            return False, set()

    def runs_of(self, name: str) -> tuple[JobInvocation, ...] | None:
        """The durable job ``name``'s latest runs in the store (any host's), oldest
        first, as last read; None when not read (not durable, or no store)."""
        return self._runs_of.get(name)

    def next_fires(self, now: datetime) -> set[Listed]:
        """The stored jobs whose next fire passed (their row shows the following one)."""
        moved: set[Listed] = set()
        for job in self._jobs.values():
            state = job.state
            if state.next_invocation is not None and state.next_invocation <= now \
                    and job.info is not None:
                job.update(job.info, list(reversed(job.runs)), now)
                moved.add(job)
        return moved

    def hosts_summary(self, now: datetime, origin: str) -> HostsSummary:
        """The hosts as HTML lines (alive first), with how many are alive and gone."""
        service_zone = self._service.zone
        lines = []
        alive = gone = 0
        for host in sorted(self.hosts, key=lambda h: (not h.alive, h.kind, h.origin)):
            alive += host.alive
            gone += not host.alive
            extra = ""
            url = host.details.get("server_url")
            if isinstance(url, str):
                extra = f"<code>{fmt.esc(url)}</code>"
            lines.append(fmt.host_line(host.kind, host.origin, host.alive, host.started,
                                       host.seen, len(host.jobs), len(host.parked), now,
                                       service_zone, host.origin == origin, extra))
        if not lines:
            return HostsSummary("<i>No host holds the job store: durable jobs run only while "
                                "a kernel with the extension, a Jupyter server or "
                                "<code>mashroom-jobs run</code> is up.</i>", 0, 0)
        head = (f"<b>Hosts</b> <small>sharing the job store: {alive} alive"
                f"{f', {gone} gone' if gone else ''}</small>")
        return HostsSummary(head + "<br>" + "<br>".join(lines), alive, gone)
