"""Route what a job prints into its invocation record.

``sys.stdout`` and ``sys.stderr`` are wrapped once by a thin proxy.  A write
made while a job runs (the executor sets a context variable around the job) is
appended to that run's buffer; every other write goes to the wrapped stream
untouched.  Unlike ``contextlib.redirect_stdout``, which swaps the stream for
the whole process, this keeps a job's output out of whatever notebook cell
happens to be running at the same time, and leaves the cell's output alone.

Threads a run starts write into the run too.  Python (before 3.14, and there only
with ``-X thread_inherit_context``) starts a thread in an empty context, so while
a service is installed :meth:`threading.Thread.start` copies the starting thread's
context into the new thread when that thread is in a run, and
:meth:`concurrent.futures.ThreadPoolExecutor.submit` runs each task in the
submitter's context: a pool's workers are shared, so a task is attributed to the
run that submitted it, not to the run that happened to start the worker.  The
library's own threads (named ``mashroom-jobs-*``) never inherit.  What such a
thread writes after its run was recorded is not recorded anywhere: the first
such write of a run logs one warning.

The close of the process's streams by a job (``sys.stdout.close()``) is absorbed.

Front ends with output channels of their own (a notebook's rich display, its input
prompts) are not the core's to patch: :func:`current_buffer` tells them which run, if any,
the calling thread (or task) writes to.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TextIO

from .records import MAX_TEXT_CHARS

__all__ = [
    "OutputBuffer", "capturing", "current_buffer", "ensure_installed", "install",
    "reset_sink", "set_sink", "uninstall",
]

log = logging.getLogger("mashroom_jobs")

#: threads of the library itself (pools, timer, writer...): they never inherit a run
OWN_THREADS = "mashroom-jobs"

#: Output kept per run; more is cut, and the cut is said in the record.
MAX_OUTPUT_CHARS = MAX_TEXT_CHARS

_current: contextvars.ContextVar[OutputBuffer | None] = contextvars.ContextVar(
    "mashroom_jobs_output", default=None
)
_install_lock = threading.Lock()
_users = 0


class OutputBuffer:
    """What one run printed, bounded to :data:`MAX_OUTPUT_CHARS`.

    :meth:`getvalue` makes the record's text and seals the buffer: what the run's
    threads write later is counted, not kept (the record is made), and the first
    such write logs a warning.
    """

    __slots__ = ("_dropped", "_late", "_parts", "_size", "owner")

    def __init__(self, owner: str = "a job") -> None:
        #: whose output it is, for the warning about late writes (``"'report'"``)
        self.owner = owner
        self._parts: list[str] | None = None  # most runs print nothing: no list for them
        self._size = 0
        self._dropped = 0
        self._late = -1  # -1: not sealed; then the characters written after sealing

    def write(self, text: str) -> None:
        if self._late >= 0:
            self._late_write(text)
            return
        if self._parts is None:
            self._parts = []
        room = MAX_OUTPUT_CHARS - self._size
        if room <= 0:
            self._dropped += len(text)
            return
        if len(text) > room:
            self._dropped += len(text) - room
            text = text[:room]
        self._parts.append(text)
        self._size += len(text)

    def getvalue(self) -> str:
        """The run's output (and how much was cut); seals the buffer."""
        if self._late < 0:
            self._late = 0
            if _unwrap_after is self:  # the run that shut the last service down: recorded
                _unwrap_deferred()
        if self._parts is None:
            return ""
        text = "".join(self._parts)
        if self._dropped:
            text += f"\n[output truncated: {self._dropped} more characters]\n"
        return text

    @property
    def sealed(self) -> bool:
        """True once the run's record took its text (see :meth:`getvalue`)."""
        return self._late >= 0

    def _late_write(self, text: str) -> None:
        first = self._late == 0
        self._late += len(text)
        if first and text:
            log.warning("mashroom-jobs: a thread started by a run of %s wrote after the run "
                        "was recorded; what it writes now is not recorded (join the "
                        "job's threads before it returns)", self.owner)



def current_buffer() -> OutputBuffer | None:
    """The buffer of the run the calling thread (or task) writes to, or None outside one
    (or when the run does not capture output).  For front ends with output channels of
    their own (the extension's rich-display and input hooks)."""
    return _current.get()


#: the buffer of the run that called the last uninstall() (a job that shut the service
#: down): the streams are restored once its record is made, not under its feet
_unwrap_after: OutputBuffer | None = None


def _unwrap_deferred() -> None:
    global _unwrap_after
    with _install_lock:
        _unwrap_after = None
        if not _users:
            _unwrap()


class _RoutingStream:
    """Stands in for sys.stdout/sys.stderr; jobs' writes go to their buffer."""

    def __init__(self, target: TextIO) -> None:
        self._target = target

    def write(self, text: str) -> int:
        buffer = _current.get()
        if buffer is None:
            return self._target.write(text)
        if not isinstance(text, str):  # as a real text stream would: the job's error
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        buffer.write(text)
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if _current.get() is None:
            self._target.flush()

    def close(self) -> None:
        """Absorbed: the process's stream is not a job's (nor a cell's) to close.

        A job that closed ``sys.stdout`` used to close the kernel's: every later ``print``
        of every cell raised ``ValueError: I/O operation on closed file``.
        """
        self.flush()

    @property
    def closed(self) -> bool:
        return bool(self._target.closed)

    def __enter__(self) -> _RoutingStream:  # `with sys.stdout:` closes nothing either
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


def install() -> None:
    """Wrap sys.stdout and sys.stderr (again, if someone replaced them since), and make
    threads started in a run inherit it (see the module docstring)."""
    global _users, _unwrap_after
    with _install_lock:
        _users += 1
        _unwrap_after = None
        _wrap()
        _patch_threads()


def ensure_installed(force: bool = False) -> None:
    """Re-wrap the streams if another library swapped them after :func:`install`;
    with ``force``, wrap them even if nobody called :func:`install` (a remote worker)."""
    if not isinstance(sys.stdout, _RoutingStream) or not isinstance(sys.stderr, _RoutingStream):
        with _install_lock:
            if _users or force:
                _wrap()


def set_sink(buffer: OutputBuffer | None) -> contextvars.Token[OutputBuffer | None]:
    """Route this thread's (or task's) writes into ``buffer`` (None: to the real streams)
    until :func:`reset_sink` with the returned token."""
    return _current.set(buffer)


def reset_sink(token: contextvars.Token[OutputBuffer | None]) -> None:
    """Undo a :func:`set_sink`."""
    _current.reset(token)


def _wrap() -> None:
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, _RoutingStream):
            setattr(sys, name, _RoutingStream(stream))


def uninstall() -> None:
    """Undo one :func:`install`; the last one restores the original streams.  Called in a
    run (a job that shuts the service down), it restores them once that run is recorded:
    what the job prints after the call still goes into its run."""
    global _users, _unwrap_after
    with _install_lock:
        _users = max(0, _users - 1)
        if _users:
            return
        _unpatch_threads()
        buffer = _current.get()
        if buffer is not None and not buffer.sealed:
            _unwrap_after = buffer
            return
        _unwrap()


def _unwrap() -> None:
    """(Under the install lock.)"""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if isinstance(stream, _RoutingStream):
            setattr(sys, name, stream._target)


# --- threads started in a run inherit it ---------------------------------------------------

_original_start: Callable[[threading.Thread], None] | None = None
_original_submit: Callable[..., Any] | None = None


def _start(self: threading.Thread) -> None:
    if _users and _current.get() is not None and not self.name.startswith(OWN_THREADS):
        # the instance attribute shadows run() (a subclass's too) for this thread only
        self.run = functools.partial(  # type: ignore[method-assign]
            _run_in, contextvars.copy_context(), self, self.run)
    assert _original_start is not None
    _original_start(self)


def _run_in(context: contextvars.Context, thread: threading.Thread,
            run: Callable[[], None]) -> None:
    try:
        context.run(run)
    finally:
        thread.__dict__.pop("run", None)  # no cycle thread -> partial -> thread


def _submit(self: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any,
            **kwargs: Any) -> Any:
    if _users and _current.get() is not None:
        fn = functools.partial(contextvars.copy_context().run, fn)
    assert _original_submit is not None
    return _original_submit(self, fn, *args, **kwargs)


def _patch_threads() -> None:
    """(Under the install lock.)"""
    global _original_start, _original_submit
    if _original_start is None:
        _original_start = threading.Thread.start
        setattr(threading.Thread, "start", _start)  # noqa: B010 (a method, replaced)
    if _original_submit is None:
        _original_submit = ThreadPoolExecutor.submit
        setattr(ThreadPoolExecutor, "submit", _submit)  # noqa: B010


def _unpatch_threads() -> None:
    """(Under the install lock.)  Only what is still ours: when another library patched
    over it since, its wrapper calls ours, which then only passes the call on."""
    global _original_start, _original_submit
    if _original_start is not None and threading.Thread.start is _start:
        setattr(threading.Thread, "start", _original_start)  # noqa: B010
        _original_start = None
    if _original_submit is not None and ThreadPoolExecutor.submit is _submit:
        setattr(ThreadPoolExecutor, "submit", _original_submit)  # noqa: B010
        _original_submit = None


class capturing:
    """Context manager: route this thread's (or task's) prints into a new buffer."""

    __slots__ = ("_token", "buffer")

    def __init__(self) -> None:
        self.buffer = OutputBuffer()

    def __enter__(self) -> OutputBuffer:
        self._token = _current.set(self.buffer)
        return self.buffer

    def __exit__(self, *exc: object) -> None:
        _current.reset(self._token)
