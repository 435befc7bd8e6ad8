"""Route what a job prints into its invocation record.

``sys.stdout`` and ``sys.stderr`` are wrapped once by a thin proxy.  A write
made while a job runs (the executor sets a context variable around the job) is
appended to that run's buffer; every other write goes to the wrapped stream
untouched.  Unlike ``contextlib.redirect_stdout``, which swaps the stream for
the whole process, this keeps a job's output out of whatever notebook cell
happens to be running at the same time, and leaves the cell's output alone.
"""

from __future__ import annotations

import contextvars
import sys
import threading
from collections.abc import Iterable
from typing import Any, TextIO

__all__ = [
    "OutputBuffer", "capturing", "ensure_installed", "install", "reset_sink", "set_sink",
    "uninstall",
]

#: Output kept per run; more is cut, and the cut is said in the record.
MAX_OUTPUT_CHARS = 100_000

_current: contextvars.ContextVar[OutputBuffer | None] = contextvars.ContextVar(
    "mashroom_jobs_output", default=None
)
_install_lock = threading.Lock()
_users = 0


class OutputBuffer:
    """What one run printed, bounded to :data:`MAX_OUTPUT_CHARS`."""

    __slots__ = ("_dropped", "_parts", "_size")

    def __init__(self) -> None:
        self._parts: list[str] | None = None  # most runs print nothing: no list for them
        self._size = 0
        self._dropped = 0

    def write(self, text: str) -> None:
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
        if self._parts is None:
            return ""
        text = "".join(self._parts)
        if self._dropped:
            text += f"\n[output truncated: {self._dropped} more characters]\n"
        return text


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

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


def install() -> None:
    """Wrap sys.stdout and sys.stderr (again, if someone replaced them since)."""
    global _users
    with _install_lock:
        _users += 1
        _wrap()


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
    """Undo one :func:`install`; the last one restores the original streams."""
    global _users
    with _install_lock:
        _users = max(0, _users - 1)
        if _users:
            return
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if isinstance(stream, _RoutingStream):
                setattr(sys, name, stream._target)


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
