"""A command line as a job: run without a shell (unless asked), in a process group of its
own; exit status 0 is success; what it writes (stdout and stderr) is the run's output.

A stop or a timeout sends SIGTERM to the whole process group, then SIGKILL after
``kill_after`` seconds: nothing the command started is left behind.  (A command that
ends by itself may leave background children running, as under cron.)
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any, ClassVar

from ..core import capture
from ..core.errors import MashroomJobsError, TargetError, TargetUnavailableError
from .base import TargetData, check_json, register_kind

__all__ = ["Command", "CommandFailedError"]

#: seconds between checks of a running command's stop flag
POLL = 0.1


class CommandFailedError(MashroomJobsError, RuntimeError):
    """A command job's process ended with a non-zero status (or was killed by a signal)."""


class Command:
    """Run ``argv`` (a list of arguments, or one string split as a shell would, without
    running a shell); with ``shell=True`` a string runs in ``/bin/sh``.

    Parameters
    ----------
    argv : str or sequence of str
        The command and its arguments.
    shell : bool
        Run the string through the shell (pipes, globs, ``&&``).
    cwd : str, optional
        Working directory (default: the host process's).
    env : mapping of str to str, optional
        Variables added to (or replacing those of) the host process's environment.
    kill_after : float
        Seconds between SIGTERM and SIGKILL when the run is stopped or times out.

    Raises
    ------
    TargetError
        For an empty command, arguments that are not strings, a bad ``env``.
    """

    kind: ClassVar[str] = "command"

    def __init__(self, argv: str | Sequence[str], *, shell: bool = False,
                 cwd: str | os.PathLike[str] | None = None,
                 env: Mapping[str, str] | None = None, kill_after: float = 2.0) -> None:
        if isinstance(argv, str):
            try:
                args = [argv] if shell else shlex.split(argv)
            except ValueError as exc:
                raise TargetError(f"cannot split the command {argv!r}: {exc}") from None
        elif isinstance(argv, Sequence) and all(isinstance(a, str) for a in argv):
            args = list(argv)
            if shell:
                args = [shlex.join(args)]
        else:
            raise TargetError(f"a command is a string or a list of strings, got {argv!r}")
        if not args or not args[0].strip():
            raise TargetError("a command needs at least the program to run")
        if not isinstance(shell, bool):
            raise TargetError(f"shell must be True or False, got {shell!r}")
        self.argv = args
        self.shell = shell
        self.cwd = None if cwd is None else os.fspath(cwd)
        variables: dict[str, Any] = check_json(dict(env or {}), "env")
        bad = [k for k, v in variables.items() if not isinstance(v, str)]
        if bad:
            raise TargetError(f"env[{bad[0]!r}] must be a string, got {variables[bad[0]]!r}")
        self.env: dict[str, str] = variables
        if isinstance(kill_after, bool) or not isinstance(kill_after, (int, float)) \
                or not 0 <= kill_after < 3600:
            raise TargetError(f"kill_after must be seconds from 0 to 3600, got {kill_after!r}")
        self.kill_after = float(kill_after)

    def to_data(self) -> TargetData:
        data: TargetData = {"kind": self.kind, "argv": self.argv, "shell": self.shell}
        if self.cwd is not None:
            data["cwd"] = self.cwd
        if self.env:
            data["env"] = self.env
        if self.kill_after != 2.0:
            data["kill_after"] = self.kill_after
        return data

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Command:
        argv = data.get("argv")
        shell = bool(data.get("shell", False))
        if shell and isinstance(argv, list) and len(argv) == 1:
            argv = argv[0]
        return cls(argv, shell=shell, cwd=data.get("cwd"),  # type: ignore[arg-type]
                   env=data.get("env"), kill_after=data.get("kill_after", 2.0))

    def describe(self) -> str:
        return self.argv[0] if self.shell else shlex.join(self.argv)

    def resolve(self) -> Callable[..., Any]:
        if not self.shell:
            program = self.argv[0]
            found = shutil.which(program, path=self.env.get("PATH"))
            if found is None:
                where = "" if os.sep in program else " on the PATH"
                raise TargetUnavailableError(f"command not found{where}: {program!r}")
        if self.cwd is not None and not os.path.isdir(self.cwd):
            raise TargetUnavailableError(f"the working directory {self.cwd!r} of the "
                                         f"command {self.describe()!r} does not exist")

        def run(context: Any) -> None:
            run_command(self, context.stop_requested)

        run.__qualname__ = run.__name__ = f"command {self.describe()}"
        return run

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Command) and other.to_data() == self.to_data()

    def __hash__(self) -> int:
        return hash(tuple(self.argv))

    def __repr__(self) -> str:
        argv = self.argv[0] if self.shell else self.argv
        options = "".join(f", {k}={v!r}" for k, v in (
            ("shell", self.shell), ("cwd", self.cwd), ("env", self.env)) if v)
        return f"Command({argv!r}{options})"


def run_command(command: Command, stop: Any) -> None:
    """Run ``command`` to its end, or until ``stop`` (a run's stop flag) is set; its output
    goes to the current run's output.  Raises :class:`CommandFailedError` for a non-zero
    status."""
    env = {**os.environ, **command.env} if command.env else None
    process = subprocess.Popen(
        command.argv[0] if command.shell else command.argv, shell=command.shell,
        cwd=command.cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True, text=True, errors="replace",
    )
    assert process.stdout is not None
    sink = capture.current_buffer()
    pump = threading.Thread(target=_pump, args=(process.stdout, sink),
                            name="mashroom-jobs-command-output", daemon=True)
    pump.start()
    try:
        while True:
            try:
                status = process.wait(POLL)
                break
            except subprocess.TimeoutExpired:
                if stop.is_set():
                    _end_group(process, command.kill_after)
                    return  # recorded as stopped (or timed out) by the runner
    except BaseException:
        _end_group(process, command.kill_after)
        raise
    finally:
        pump.join(5)
    if status:
        what = f"was killed by {signal.Signals(-status).name}" if status < 0 \
            else f"exited with status {status}"
        raise CommandFailedError(f"command {command.describe()!r} {what}")


def _pump(stream: IO[str], sink: capture.OutputBuffer | None) -> None:
    """Copy the command's output into the run's (or the process's) output, line by line."""
    import sys

    with stream:
        for line in stream:
            if sink is not None:
                sink.write(line)
            else:
                sys.stdout.write(line)


def _end_group(process: subprocess.Popen[str], kill_after: float) -> None:
    """SIGTERM to the process group, SIGKILL ``kill_after`` seconds later if it is still
    there; then reap the process."""
    for sig, wait in ((signal.SIGTERM, kill_after), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(wait)
        except subprocess.TimeoutExpired:
            continue
        # the leader ended; others of its group may live on: one SIGKILL for them
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        break


register_kind(Command.kind, Command.from_data)
