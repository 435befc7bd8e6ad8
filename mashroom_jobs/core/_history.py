"""A job's recent runs, kept compactly: one packed buffer per job, records built on read.

10,000 jobs with 20 runs each would otherwise hold 200,000 ``JobInvocation``
objects (and their datetimes), all tracked by the garbage collector: a full
collection over them took ~100 ms, right in the middle of the fire times.
Here each run is 28 bytes in one ``bytearray`` (start, duration, fire time,
trigger, attempt and flags), plus its texts
(error, traceback, output, worker, origin) only when it has any.  Nothing here
is tracked by the collector, and a run allocates nothing that outlives it.
"""

from __future__ import annotations

import math
import struct
from datetime import datetime, tzinfo

from .records import OUTCOMES, TRIGGERS, JobInvocation

__all__ = ["RunHistory"]

# The ring's record: start, fire time (epoch s; NaN: none), duration (ms), and bits: the
# trigger (bits 0-2), the outcome (bits 3-5) and, from bit 6, the attempt.
_RECORD = struct.Struct("<dddI")
_TRIGGER_CODES = {name: code for code, name in enumerate(TRIGGERS)}
_OUTCOME_CODES = {outcome: code << 3 for code, outcome in enumerate(OUTCOMES)}
_OUTCOME_OF = {code: outcome for outcome, code in _OUTCOME_CODES.items()}
_FAILING = frozenset(code for outcome, code in _OUTCOME_CODES.items() if outcome.failed)
_MAX_ATTEMPT = 2 ** 25
# a run's texts, kept only when it has any: error, traceback, output, worker, origin,
# artifact, revision
_Texts = tuple[str | None, str | None, str, str | None, str | None, str | None, str | None]
_NO_TEXTS: _Texts = (None, None, "", None, None, None, None)


class RunHistory:
    """The last ``size`` runs of one job, oldest first."""

    __slots__ = ("_buffer", "_count", "_size", "_start", "_texts", "_total")

    def __init__(self, size: int) -> None:
        self._size = max(1, size)
        self._buffer = bytearray()  # grows to size records, then is reused as a ring
        self._start = 0  # the ring index of the oldest run
        self._count = 0
        self._total = 0  # runs ever appended: the serial number of the next one
        # ring index -> (error, traceback, output, worker, origin) for runs that have any
        self._texts: dict[int, _Texts] = {}

    def __len__(self) -> int:
        return self._count

    def append(self, run: JobInvocation, size: int) -> None:
        """Keep ``run``; the oldest goes when ``size`` runs are kept."""
        if size != self._size:
            self._resize(size)
        scheduled = math.nan if run.scheduled_for is None else run.scheduled_for.timestamp()
        bits = (_TRIGGER_CODES[run.trigger] | _OUTCOME_CODES[run.outcome]
                | (min(run.attempt, _MAX_ATTEMPT) << 6))
        if self._count < self._size:
            index = (self._start + self._count) % self._size
            self._count += 1
        else:
            index = self._start
            self._start = (self._start + 1) % self._size
        end = (index + 1) * _RECORD.size
        if len(self._buffer) < end:
            self._buffer.extend(bytes(end - len(self._buffer)))
        _RECORD.pack_into(self._buffer, index * _RECORD.size, run.timestamp.timestamp(),
                          scheduled, run.execution_time_ms, bits)
        self._total += 1
        texts = (run.error_message, run.traceback, run.output, run.worker, run.origin,
                 run.artifact, run.revision)
        if any(texts):
            self._texts[index] = texts
        else:
            self._texts.pop(index, None)

    def get(self, position: int, zone: tzinfo, job: str = "") -> JobInvocation:
        """The run at ``position`` (0 is the oldest, -1 the newest) of ``job``, in ``zone``."""
        if position < 0:
            position += self._count
        if not 0 <= position < self._count:
            raise IndexError(f"no run at position {position} (there are {self._count})")
        index = (self._start + position) % self._size
        started, fire, duration, bits = _RECORD.unpack_from(self._buffer, index * _RECORD.size)
        error, tb, output, worker, origin, artifact, revision = self._texts.get(index, _NO_TEXTS)
        scheduled = None if math.isnan(fire) else datetime.fromtimestamp(fire, zone)
        return JobInvocation(
            timestamp=datetime.fromtimestamp(started, zone), scheduled_for=scheduled,
            trigger=TRIGGERS[bits & 7], execution_time_ms=duration,
            outcome=_OUTCOME_OF[bits & 0o70], error_message=error, traceback=tb, output=output,
            attempt=bits >> 6, worker=worker, origin=origin, job=job, artifact=artifact,
            revision=revision,
        )

    def runs(self, zone: tzinfo, job: str = "") -> tuple[JobInvocation, ...]:
        """Every run kept, oldest first."""
        return tuple(self.get(i, zone, job) for i in range(self._count))

    def last_failed(self) -> bool:
        """Whether the newest record is a failure (failed, stopped, timed out): cheap."""
        if not self._count:
            return False
        index = (self._start + self._count - 1) % self._size
        bits = _RECORD.unpack_from(self._buffer, index * _RECORD.size)[3]
        return bits & 0o70 in _FAILING

    def start_times(self) -> tuple[list[float], int, int]:
        """The start (epoch seconds) of each run kept, in the order of the ring's slots;
        the slot of the oldest run; and its serial number: the run in slot ``i`` is
        numbered ``first + (i - oldest) % len(starts)``.  No record is built: this is for
        merging the histories of many jobs cheaply (then :meth:`by_serial`)."""
        starts = [record[0] for record in _RECORD.iter_unpack(self._buffer)]
        return starts, self._start, self._total - self._count

    def by_serial(self, serial: int, zone: tzinfo, job: str = "") -> JobInvocation | None:
        """The run numbered ``serial`` (its place among all the runs ever kept; see
        :meth:`start_times`), or None when it is no longer kept."""
        position = serial - (self._total - self._count)
        return self.get(position, zone, job) if 0 <= position < self._count else None

    def _resize(self, size: int) -> None:
        size = max(1, size)
        keep = [self._raw(i) for i in range(max(0, self._count - size), self._count)]
        self._size, self._start, self._count = size, 0, 0
        self._buffer, self._texts = bytearray(), {}
        for position, (record, texts) in enumerate(keep):
            self._buffer.extend(record)
            if texts is not None:
                self._texts[position] = texts
            self._count += 1

    def _raw(self, position: int) -> tuple[bytes, _Texts | None]:
        index = (self._start + position) % self._size
        offset = index * _RECORD.size
        return bytes(self._buffer[offset:offset + _RECORD.size]), self._texts.get(index)
