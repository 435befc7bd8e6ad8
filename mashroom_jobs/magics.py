"""JobMagics: ``%jobs``, ``%%schedule``, ``%unschedule``: thin adapters to the service.

A bad argument, an unknown job or an invalid expression raises
:class:`~IPython.core.error.UsageError`, which IPython prints as one line.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from IPython.core import magic as _ipython_magic
from IPython.core import magic_arguments as _ipython_arguments
from IPython.core.error import UsageError
from IPython.core.magic import Magics, magics_class

from .core.arguments import check_name
from .core.errors import MashroomJobsError
from .plugins import format_plugins_table
from .targets.spelling import target_from_options

if TYPE_CHECKING:
    from .service import BackgroundJobService

__all__ = ["JobMagics"]

_F = TypeVar("_F", bound=Callable[..., Any])


class _Decorator(Protocol):
    def __call__(self, function: _F, /) -> _F: ...


# Each of IPython's magic decorators returns the function it is given (marked as a magic, or
# with its argument parser attached), which is what these typed names say: the argument
# decorators are unannotated, and line_magic's annotation covers both of its forms
# (@line_magic and @line_magic("name")), so its result is a union
line_magic = cast(_Decorator, _ipython_magic.line_magic)
cell_magic = cast(_Decorator, _ipython_magic.cell_magic)
line_cell_magic = cast(_Decorator, _ipython_magic.line_cell_magic)
magic_arguments: Callable[[], _Decorator] = _ipython_arguments.magic_arguments
argument: Callable[..., _Decorator] = _ipython_arguments.argument


HELP = ("-h", "--help")


def _parse(magic: Any, line: str, prefix: str = "%") -> Any:
    """Parse a magic's arguments; quotes group words and are removed, as in a shell.

    None after printing the magic's help, for ``-h`` or ``--help`` (IPython's magic
    parsers have no help option: ``--help`` was an unknown argument).
    """
    try:
        argv = shlex.split(line)
    except ValueError as exc:  # e.g. "No closing quotation"
        raise UsageError(f"{prefix}{magic.__name__}: {exc} in: {line!r}") from None
    if any(arg in HELP for arg in argv):
        text = magic.parser.format_help().removeprefix("::\n\n")
        print(text.replace(f" %{magic.__name__} ", f" {prefix}{magic.__name__} ", 1))
        return None
    return magic.parser.parse_args(argv)  # its errors are UsageErrors


@magics_class
class JobMagics(Magics):
    """The magics of ``%load_ext mashroom_jobs``, bound to one service.

    Parameters
    ----------
    shell : InteractiveShell
        The shell to register with.
    service : BackgroundJobService
        The service the magics act on.
    """

    def __init__(self, shell: Any, *, service: BackgroundJobService) -> None:
        super().__init__(shell)
        self.service = service

    @magic_arguments()
    @argument(
        "--plugins", action="store_true",
        help="List the background-job plugins (state, schedule and error) and the job store.",
    )
    @line_magic
    def jobs(self, line: str) -> Any:
        """Show the jobs panel, or with ``--plugins`` the background-job plugins and
        the job store's path.

        Where widgets cannot render (terminal IPython, ipywidgets missing), prints the
        jobs as a text table.
        The panel is returned, so it is displayed as the cell's output; running
        ``%jobs`` again shows the same panel.
        """
        args = _parse(self.jobs, line)
        if args is None:
            return None
        service = self.service
        if args.plugins:
            print(format_plugins_table(service.plugins))
            print(f"Store: {service.store_path or 'in memory (runs are kept in this kernel only)'}")
            return None
        if getattr(self.shell, "kernel", None) is None:  # terminal IPython: no widgets
            print(repr(service))
            return None
        try:
            panel = importlib.import_module(".panel", __package__)
        except ImportError:  # ipywidgets is not available: text will do
            print(repr(service))
            return None
        # one panel per service: %jobs run again shows it again instead of piling up panels
        return panel.display_panel(service)

    @magic_arguments()
    @argument("name", help="The job's name; quote it when it has spaces.")
    @argument(
        "cron",
        help='The cron expression, quoted: "*/5 * * * *" (5 fields, 6 with seconds first, '
             "or a macro such as @hourly).",
    )
    @argument("--tz", metavar="ZONE", default=None,
              help="IANA time zone of the expression (default: the service's).")
    @argument("--now", action="store_true", help="Also run once right away.")
    @argument("--timeout", metavar="SECONDS", type=float, default=None,
              help="Stop a run that takes longer (see BackgroundJob.stop).")
    @argument("--retries", metavar="N", type=int, default=0,
              help="Retry a failed run up to N times.")
    @argument("--retry-delay", metavar="SECONDS", type=float, default=30.0,
              help="Seconds before each retry (default: 30).")
    @argument("--command", metavar="'CMD ARGS'", default=None,
              help="%schedule: run this command line (split as a shell would, no shell).")
    @argument("--shell", metavar="'CMD | ...'", default=None,
              help="%schedule: run this command line in /bin/sh.")
    @argument("--call", metavar="MODULE:FUNCTION", default=None,
              help="%schedule: call this importable function.")
    @argument("--arg", metavar="KEY=VALUE", action="append",
              help="A keyword argument of --call (repeatable; JSON when it is JSON).")
    @argument("--notebook", metavar="PATH", default=None,
              help="%schedule: run this notebook in a fresh kernel.")
    @argument("-p", "--param", metavar="KEY=VALUE", action="append",
              help="A parameter of --notebook (repeatable; JSON when it is JSON).")
    @argument("--kernel", metavar="NAME", default=None,
              help="The kernel --notebook runs in (default: its own kernelspec).")
    @argument("--snapshot", action="store_true",
              help="Run the --notebook as it is now, not as it is at each fire.")
    @argument("--cwd", metavar="DIR", default=None,
              help="The working directory of --command, --shell or --notebook.")
    @argument("--durable", action="store_true",
              help="Keep the job in the job store: every process attached to it runs it, "
                   "after this kernel is gone (not for a cell body).")
    @argument("--catchup", choices=("latest", "skip", "all"), default=None,
              help="A durable job's fires missed while no process ran: run the latest once "
                   "(default), only record them, or run each.")
    @line_cell_magic
    def schedule(self, line: str, cell: str | None = None) -> None:
        """Schedule the cell's body as a job that runs in the notebook's namespace, or
        (one %) a command, a function or a notebook, in-kernel or durable.

        ``%%schedule "Refresh data" "*/5 * * * *" --tz Europe/Vienna --now``
        ``%%schedule nightly "0 2 * * *" --timeout 600 --retries 2 --retry-delay 60``
        ``%schedule backup "0 3 * * *" --command "rsync -a data/ /backup/" --durable``
        ``%schedule report "0 7 * * Mon-Fri" --notebook report.ipynb -p region=EU --durable``

        A cell's body runs on a worker thread, not in the cell: what it prints goes
        to the job's runs (see the panel), and the names it assigns land in the
        notebook's namespace.  Scheduling a name again replaces that job.
        ``%schedule --help`` (one %) prints this help.
        """
        magic = "%" if cell is None else "%%"
        args = _parse(self.schedule, line, magic)
        if args is None:
            return
        name = args.name.strip()
        if not name:
            raise UsageError(f"{magic}schedule: the job name is empty")
        try:
            check_name(name)  # before the name goes into the compiled cell's file name
        except ValueError as exc:
            raise UsageError(f"{magic}schedule: {exc}") from None
        options = {"command": args.command, "shell": args.shell, "call": args.call,
                   "args": args.arg, "notebook": args.notebook, "params": args.param,
                   "kernel": args.kernel, "snapshot": args.snapshot, "cwd": args.cwd}
        named = [f"--{key}" for key in ("command", "shell", "call", "notebook")
                 if options[key] is not None]
        if cell is None:
            if not named:
                raise UsageError(
                    "%schedule schedules a --command, --shell, --call or --notebook; for code, "
                    "put %%schedule NAME CRON on the first line of a cell and the code below "
                    "it (%schedule --help: the help)")
            try:
                callback: Any = target_from_options(**options)
            except MashroomJobsError as exc:
                raise UsageError(f"%schedule {name!r}: {exc}") from None
        else:
            if named or args.arg or args.param or args.kernel or args.snapshot or args.cwd:
                option = named[0] if named else "--arg/--param/--kernel/--snapshot/--cwd"
                raise UsageError(f"%%schedule {name!r}: the cell is the job; {option} goes "
                                 f"with %schedule (one %)")
            if args.durable:
                raise UsageError(
                    f"%%schedule {name!r}: a cell cannot be durable (another process cannot "
                    f"run it): move the code into a module and use %schedule NAME CRON --call "
                    f"module:function --durable, or --notebook PATH --durable")
            if not cell.strip():
                raise UsageError(f"%%schedule {name!r}: the cell is empty, there is nothing "
                                 f"to run")
            callback = self._compile_cell(name, cell)
        try:
            job = self.service.schedule_job(
                name, args.cron, callback, timezone=args.tz, invoke_immediately=args.now,
                timeout=args.timeout, retries=args.retries, retry_delay=args.retry_delay,
                durable=args.durable, catchup=args.catchup,
            )
        except (MashroomJobsError, ValueError, TypeError) as exc:
            raise UsageError(f"{magic}schedule {name!r}: {exc}") from None
        nxt = job.next_invocation
        when = f", next run {nxt:%Y-%m-%d %H:%M:%S %Z}" if nxt is not None else ""
        kind = "durable job " if job.durable else ""
        print(f"Scheduled {kind}{name!r}: {job.description}{when}")

    def _compile_cell(self, name: str, cell: str) -> Any:
        shell = self.shell
        source = shell.transform_cell(cell) if shell is not None else cell
        filename = f"<schedule {name}>"
        try:
            code = compile(source, filename, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        except SyntaxError as exc:
            raise UsageError(
                f"%%schedule {name!r}: syntax error in the cell, line {exc.lineno}: {exc.msg}"
            ) from None
        # a body with a top-level await compiles to a coroutine: the job awaits it
        is_coroutine = bool(code.co_flags & inspect.CO_COROUTINE)

        def run_cell() -> Any:
            namespace = shell.user_ns if shell is not None else {}
            if is_coroutine:
                return eval(code, namespace)
            exec(code, namespace)
            return None

        run_cell.__qualname__ = run_cell.__name__ = f"schedule[{name}]"
        return run_cell

    @line_magic
    def unschedule(self, line: str) -> None:
        """Unschedule the job NAME (quotes optional): it fires no more.

        ``%unschedule Refresh data``
        """
        name = line.strip()
        if name in HELP:  # (a job really named so: quote it)
            print(inspect.cleandoc(JobMagics.unschedule.__doc__ or ""))
            return
        if len(name) >= 2 and name[0] == name[-1] and name[0] in "\"'":
            name = name[1:-1]
        if not name:
            raise UsageError("%unschedule: give the name of the job to unschedule")
        service = self.service
        job = service.get_job(name)
        durable = service.is_durable(name)
        if job is None and not durable:
            names = ", ".join(repr(job.name) for job in service.jobs) or "none"
            raise UsageError(f"%unschedule: no job named {name!r}; scheduled jobs: {names}")
        service.unschedule_job(name)
        if durable:
            print(f"Removed durable job {name!r} from the job store: no process runs it any more")
        print(f"Unscheduled {name!r}")
