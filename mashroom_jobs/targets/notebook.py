"""A notebook file as a job: each run executes it in a fresh kernel, with parameters
injected papermill's way, keeps the executed copy, and says which cell it is in.

Parameters follow papermill's conventions, which notebook users already know: the cell
tagged ``parameters`` holds the defaults; a cell tagged ``injected-parameters`` with the
job's values is inserted after it (replacing one left by an earlier run, or at the top
when no cell is tagged ``parameters``); a parameter the ``parameters`` cell does not
assign is run anyway, with papermill's warning (``Passed unknown parameter``) in the
run's output.

Execution uses nbclient (what papermill runs on) directly, not papermill: a run
starts its kernel in the notebook's folder without changing this process's working
directory (``papermill.execute_notebook`` calls ``os.chdir`` for its ``cwd``, process-wide:
in a kernel that would move the user's working directory under them), its timeout covers
the whole notebook, a stop reaches the kernel, and progress is reported cell by cell.

A run:

* reads the notebook as it is at fire time (or the snapshot taken when the target was
  made, with ``snapshot=True``), and records its revision (a hash of its cells' sources);
* starts the kernel the notebook names (or ``kernel``), in the notebook's folder (or
  ``cwd``), with no standard input: a cell that calls ``input()`` fails at once;
* executes the cells one by one, saying ``cell 7 of 20`` (and the cell's first line) in
  the job's state, and writing what the cells print into the run's output;
* saves the executed copy after each cell, so a failed or stopped run keeps what it did
  (see :func:`output_folder` for where);
* on a stop or a timeout, interrupts the kernel, then asks it to shut down, then kills
  its process group, all within the service's ``stop_grace``; a kernel that dies is
  noticed within about a second.  No kernel outlives its run, nor this process.

Nothing here imports Jupyter at import time: nbclient, nbformat and jupyter_client are
imported when a notebook target is resolved or run (``pip install
'mashroom-jobs[notebook]'``).
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import json
import keyword
import os
import re
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone, tzinfo
from typing import TYPE_CHECKING, Any, ClassVar

from ..core import capture
from ..core.errors import (
    JobInputError,
    MashroomJobsError,
    ServiceShutdownError,
    TargetError,
    TargetUnavailableError,
)
from ..core.records import error_text
from ..core.runs import current_run
from ..store.artifacts import mark_folder, notebooks_folder
from .base import TargetData, check_json, register_kind

if TYPE_CHECKING:
    from nbformat import NotebookNode

__all__ = [
    "KernelDiedError", "Notebook", "NotebookCellError", "NotebookError", "NotebookInputError",
    "RunNotebook", "inject_parameters", "notebook_revision", "output_folder",
]

#: seconds between two looks at a running notebook's stop flag
POLL = 0.05
#: seconds a kernel may take to start and answer
STARTUP_TIMEOUT = 60.0
#: seconds a kernel is given to shut down after a run that ended by itself
SHUTDOWN_WAIT = 5.0
#: the stop grace when the run's service does not say (on a Dask worker)
DEFAULT_STOP_GRACE = 5.0
#: the most characters of what a kernel process wrote that a failure shows
KERNEL_LOG_CHARS = 3000
#: the executed notebooks a job keeps without a store (with one, the store's retention)
DEFAULT_KEEP = 20
#: the tag of the cell holding a notebook's default parameters, and of the injected cell
PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_PYTHON_ASSIGNMENT = re.compile(r"^([A-Za-z_]\w*)\s*(?::[^=]*)?=(?!=)")
_INSTALL = "pip install 'mashroom-jobs[notebook]'"


class NotebookError(MashroomJobsError, RuntimeError):
    """A notebook job's run could not execute its notebook (its kernel did not start,
    Jupyter's packages are missing where it runs...)."""

    #: the run's traceback, when there is more to say than where it was raised here
    traceback_text = ""


class NotebookCellError(NotebookError):
    """A cell of a notebook job raised: the run fails with the cell's number, its first
    line, and the kernel's traceback (``traceback_text``, the run's ``traceback``).

    Attributes
    ----------
    cell : int
        The cell's number among the code cells executed (the injected parameters count).
    cells : int
        How many code cells there are.
    source : str
        The first line of the cell's source.
    ename, evalue : str
        The exception's name and value, as the kernel reported them.
    traceback_text : str
        The kernel's traceback, without terminal colours.
    """

    def __init__(self, message: str, *, cell: int, cells: int, source: str, ename: str,
                 evalue: str, traceback_text: str) -> None:
        super().__init__(message)
        self.cell, self.cells, self.source = cell, cells, source
        self.ename, self.evalue, self.traceback_text = ename, evalue, traceback_text


class NotebookInputError(JobInputError):
    """A cell of a notebook job asked for input (``input()``, ``getpass()``): the kernel
    has no standard input, so the cell failed at once."""

    def __init__(self, message: str, traceback_text: str = "") -> None:
        super().__init__(message)
        self.traceback_text = traceback_text


class KernelDiedError(NotebookError):
    """A notebook job's kernel ended while a cell ran (``os._exit``, a crash, killed by
    the system).  Its ``traceback_text`` (the run's ``traceback``) shows that cell, and the
    end of what the kernel process wrote."""


class Notebook:
    """Run the notebook at ``path`` with ``parameters``, each run in a fresh kernel.

    Parameters
    ----------
    path : str or path-like
        The notebook file (``.ipynb``), made absolute now.
    parameters : mapping, optional
        Values injected after the cell tagged ``parameters`` (papermill's convention):
        JSON values (strings, numbers, booleans, None, lists and dicts of them).
    kernel : str, optional
        The kernel to run it in (a kernelspec name such as ``"python3"``); default:
        the one the notebook names.
    cwd : str or path-like, optional
        The kernel's working directory; default: the notebook's folder.
    snapshot : bool
        Read the notebook now and run this copy every time (its outputs left out);
        default: each run reads the file as it is then.
    output_dir : str or path-like, optional
        Where to keep executed notebooks (a folder per job in it); default: beside the
        job store (see
        :func:`~mashroom_jobs.targets.notebook.output_folder`).

    Raises
    ------
    TargetError
        For a parameter that is not JSON (naming it), an empty path, bad options.
    TargetUnavailableError
        With ``snapshot=True``, when the file cannot be read as a notebook now.

    Examples
    --------
    >>> from mashroom_jobs import Notebook
    >>> Notebook("reports/daily.ipynb", {"day": "today", "limit": 10})  # doctest: +SKIP
    """

    kind: ClassVar[str] = "notebook"

    def __init__(self, path: str | os.PathLike[str], parameters: Mapping[str, Any] | None = None,
                 *, kernel: str | None = None, cwd: str | os.PathLike[str] | None = None,
                 snapshot: bool = False,
                 output_dir: str | os.PathLike[str] | None = None) -> None:
        self.path = _absolute(path, "path")
        if parameters is not None and not isinstance(parameters, Mapping):
            raise TargetError(f"a notebook's parameters are a dict of names and JSON values, "
                              f"got {type(parameters).__name__} {parameters!r:.60}")
        values: dict[str, Any] = check_json(dict(parameters or {}), "parameters")
        self.parameters = values
        if kernel is not None and (not isinstance(kernel, str) or not kernel.strip()):
            raise TargetError(f"kernel must be a kernel's name, such as 'python3', "
                              f"got {kernel!r}")
        self.kernel = kernel
        self.cwd = None if cwd is None else _absolute(cwd, "cwd")
        self.output_dir = None if output_dir is None else _absolute(output_dir, "output_dir")
        if not isinstance(snapshot, bool):
            raise TargetError(f"snapshot must be True or False, got {snapshot!r}")
        #: the notebook as read when the target was made (``snapshot=True``), or None
        self.snapshot: dict[str, Any] | None = _read_snapshot(self.path) if snapshot else None

    # -- as data ---------------------------------------------------------------------------

    def to_data(self) -> TargetData:
        data: TargetData = {"kind": self.kind, "path": self.path,
                            "parameters": self.parameters}
        for key in ("kernel", "cwd", "output_dir"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        if self.snapshot is not None:
            data["snapshot"] = self.snapshot
        return data

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Notebook:
        target = cls(data.get("path"), data.get("parameters"),  # type: ignore[arg-type]
                     kernel=data.get("kernel"), cwd=data.get("cwd"),
                     output_dir=data.get("output_dir"))
        snapshot = data.get("snapshot")
        if snapshot is not None:
            if not isinstance(snapshot, dict) or not isinstance(snapshot.get("cells"), list):
                raise TargetError(f"the snapshot of notebook {target.path!r} is not a "
                                  f"notebook")
            target.snapshot = snapshot
        return target

    @property
    def revision(self) -> str | None:
        """The snapshot's revision (see
        :func:`~mashroom_jobs.targets.notebook.notebook_revision`); None without one."""
        return None if self.snapshot is None else notebook_revision(self.snapshot)

    def describe(self) -> str:
        text = f"notebook {_home(self.path)}"
        if self.parameters:
            text += " " + " ".join(f"-p {k}={json.dumps(v, ensure_ascii=False)}"
                                   for k, v in self.parameters.items())
        if self.snapshot is not None:
            text += f" (snapshot {self.revision})"
        return text if len(text) <= 200 else text[:199] + "…"

    # -- running ---------------------------------------------------------------------------

    def resolve(self) -> Callable[..., Any]:
        """Check that the notebook can run now (its file, its kernel, its parameters) and
        return the callback that runs it.

        Raises
        ------
        TargetUnavailableError
            When the file is missing or is not a notebook, when its kernel is not
            installed here, or when Jupyter's packages are missing.
        TargetError
            When a parameter cannot be injected (not a valid name in the notebook's
            language, or a language papermill's translators would be needed for).
        """
        notebook = self.load()
        _, language = self.kernel_of(notebook)
        _check_parameter_names(self.parameters, language)
        return RunNotebook(self)

    def load(self) -> NotebookNode:
        """The notebook as it would run now: the snapshot, or the file read now.

        Raises
        ------
        TargetUnavailableError
            When it cannot be read as a notebook (the message says why).
        """
        nbformat = _import("nbformat")
        if self.snapshot is not None:
            try:  # (as read from a file: sources kept as lists of lines are joined)
                return nbformat.reads(json.dumps(self.snapshot),  # type: ignore[no-any-return]
                                      as_version=4)
            except Exception as exc:  # a snapshot of a file that was JSON but no notebook
                raise TargetUnavailableError(f"the snapshot of {self.path!r} is not a "
                                             f"notebook: {error_text(exc)}") from None
        return _read_notebook(self.path)

    def kernel_of(self, notebook: NotebookNode) -> tuple[str, str]:
        """The kernel a run of ``notebook`` starts, and its language.

        Raises
        ------
        TargetUnavailableError
            When the notebook names no kernel (and the target none), or the kernel is
            not installed here.
        """
        kernelspec = _import("jupyter_client.kernelspec")
        name = self.kernel or notebook.metadata.get("kernelspec", {}).get("name")
        if not name:
            raise TargetUnavailableError(
                f"notebook {self.path!r} names no kernel (its metadata has no kernelspec): "
                f"give one, such as kernel='python3'")
        manager = kernelspec.KernelSpecManager()
        try:
            spec = manager.get_kernel_spec(name)
        except kernelspec.NoSuchKernel:
            known = ", ".join(sorted(manager.find_kernel_specs())) or "none"
            where = _where()
            where = "here" if where == "this process" else f"on {where}"
            raise TargetUnavailableError(
                f"unknown kernel {name!r} for notebook {self.path!r} (kernels {where}: "
                f"{known}); install it, or give another with kernel=") from None
        return str(name), str(spec.language or "")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Notebook) and other.to_data() == self.to_data()

    def __hash__(self) -> int:
        return hash(self.path)

    def __repr__(self) -> str:
        options = "".join(f", {k}={v!r}" for k, v in (
            ("kernel", self.kernel), ("cwd", self.cwd), ("output_dir", self.output_dir))
            if v is not None)
        parameters = f", {self.parameters!r}" if self.parameters else ""
        snapshot = ", snapshot=True" if self.snapshot is not None else ""
        return f"Notebook({self.path!r}{parameters}{options}{snapshot})"


class RunNotebook:
    """The callback of a notebook job (what ``Notebook.resolve()`` returns): called with
    the job's context, runs the notebook once.  Picklable, for a process pool or a Dask
    worker."""

    def __init__(self, target: Notebook) -> None:
        self.target = target
        self.__qualname__ = self.__name__ = target.describe()

    def __call__(self, context: Any) -> None:
        _Run(self.target, context).run()

    def __repr__(self) -> str:
        return f"<run {self.target!r}>"


# -- parameters (papermill's conventions) ---------------------------------------------------


def inject_parameters(notebook: NotebookNode, parameters: Mapping[str, Any], language: str,
                      kernel: str) -> tuple[list[str], bool]:
    """Insert (or replace) the cell tagged ``injected-parameters`` in ``notebook``, in
    place, as papermill does; nothing when ``parameters`` is empty.

    Returns
    -------
    unknown : list of str
        The parameters the cell tagged ``parameters`` does not assign (papermill warns).
    tagged : bool
        Whether the notebook has a cell tagged ``parameters`` (without one, the values go
        at the top).

    Raises
    ------
    TargetError
        When the notebook's language is not Python and papermill (whose translators
        would write the values in that language) is not installed.
    """
    nbformat = _import("nbformat")
    cells = notebook.cells
    tagged = next((i for i, c in enumerate(cells) if PARAMETERS_TAG in _tags(c)), -1)
    if not parameters:
        return [], tagged >= 0
    declared = _declared(cells[tagged], language, kernel) if tagged >= 0 else set()
    unknown = [name for name in parameters if name not in declared]
    cell = nbformat.v4.new_code_cell(_assignments(parameters, language, kernel),
                                     metadata={"tags": [INJECTED_TAG]})
    injected = next((i for i, c in enumerate(cells) if INJECTED_TAG in _tags(c)), -1)
    if injected >= 0:
        cells[injected] = cell
    else:
        cells.insert(tagged + 1 if tagged >= 0 else 0, cell)
    return unknown, tagged >= 0


def _tags(cell: Any) -> list[str]:
    tags = cell.get("metadata", {}).get("tags", [])
    return tags if isinstance(tags, list) else []


def _python(language: str) -> bool:
    return language.lower() in ("python", "python3", "")


def _assignments(parameters: Mapping[str, Any], language: str, kernel: str) -> str:
    if _python(language):
        # the lines papermill writes, under the same comment (its strings escape what is
        # not ASCII; these keep it as it is)
        return "# Parameters\n" + "".join(f"{k} = {_python_literal(v)}\n"
                                          for k, v in parameters.items())
    translators = _papermill_translators(language)
    return str(translators.translate_parameters(kernel, language, dict(parameters),
                                                "Parameters"))


def _python_literal(value: Any) -> str:
    """A JSON value as Python source: a JSON string is a valid Python string literal."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return f"[{', '.join(map(_python_literal, value))}]"
    if isinstance(value, dict):
        items = (f"{_python_literal(k)}: {_python_literal(v)}" for k, v in value.items())
        return f"{{{', '.join(items)}}}"
    return repr(value)  # True, None, 3, 2.5 (check_json refused nan and inf)


def _declared(cell: Any, language: str, kernel: str) -> set[str]:
    """The names the cell tagged ``parameters`` assigns (as papermill reads them)."""
    source = _source(cell)
    if _python(language):
        return {m.group(1) for line in source.splitlines()
                if (m := _PYTHON_ASSIGNMENT.match(line))}
    translators = _papermill_translators(language)
    translator = translators.papermill_translators.find_translator(kernel, language)
    return {parameter.name for parameter in translator.inspect(cell)}


def _papermill_translators(language: str) -> Any:
    import importlib

    try:
        translators = importlib.import_module("papermill.translators")
    except ImportError:
        raise TargetError(
            f"injecting parameters into a notebook in {language!r} needs papermill's "
            f"translators (pip install papermill); without it, parameters go into Python "
            f"notebooks only") from None
    return translators


def _check_parameter_names(parameters: Mapping[str, Any], language: str) -> None:
    if not _python(language):
        return
    for name in parameters:
        if not name.isidentifier() or keyword.iskeyword(name):
            raise TargetError(f"parameter {name!r} is not a valid Python name: a notebook "
                              f"parameter becomes a variable (letters, digits and _, not "
                              f"starting with a digit)")


# -- revisions, snapshots, where runs keep their notebooks -------------------------------


def notebook_revision(notebook: Mapping[str, Any]) -> str:
    """The first 12 hex digits of the SHA-256 of the notebook's cells, their types and
    sources: what runs.  Outputs, execution counts and metadata do not count, so running
    a notebook in JupyterLab and saving it does not change its revision; editing a cell
    does."""
    digest = hashlib.sha256()
    for cell in notebook.get("cells", []):
        digest.update(json.dumps([cell.get("cell_type"), _source(cell)]).encode())
    return digest.hexdigest()[:12]


def _source(cell: Mapping[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _read_snapshot(path: str) -> dict[str, Any]:
    """The notebook at ``path`` as JSON, its outputs left out (plain JSON: no Jupyter
    import when a target is made)."""
    try:
        with open(path, encoding="utf-8") as file:
            data = json.load(file)
    except FileNotFoundError:
        raise TargetUnavailableError(f"notebook not found: {path!r}") from None
    except (OSError, ValueError) as exc:
        raise TargetUnavailableError(f"cannot read {path!r} as a notebook: "
                                     f"{error_text(exc)}") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise TargetUnavailableError(f"{path!r} is not a notebook (JSON without cells)")
    for cell in data["cells"]:
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
    return data


def _read_notebook(path: str) -> NotebookNode:
    nbformat = _import("nbformat")
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except FileNotFoundError:
        raise TargetUnavailableError(f"notebook not found: {path!r}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TargetUnavailableError(f"cannot read notebook {path!r}: "
                                     f"{error_text(exc)}") from None
    try:
        return nbformat.reads(text, as_version=4)  # type: ignore[no-any-return]
    except Exception as exc:  # NotJSONError, a validation error, a version it cannot read
        raise TargetUnavailableError(f"{path!r} is not a notebook: "
                                     f"{error_text(exc)[:300]}") from None


def output_folder(target: Notebook, job: str, store_path: str | None) -> str:
    """The folder where ``job``'s runs keep their executed notebooks: in
    ``target.output_dir`` if set, else beside the job store
    (``<store's folder>/<store's name>-notebooks``), else, without a store, in
    ``<temp>/mashroom-jobs-<user>/notebooks``; then a folder named after the job.

    With a store, each file goes when the store prunes the run that made it (its
    ``store_retention_runs`` per job and ``store_retention_days``); without one, each
    job keeps the notebooks of its last ``history_size`` runs, as its in-memory history.
    """
    if target.output_dir is not None:
        root = target.output_dir
    elif store_path is not None:
        root = notebooks_folder(store_path)
    else:
        user = str(os.getuid()) if hasattr(os, "getuid") else os.environ.get("USERNAME", "")
        root = os.path.join(tempfile.gettempdir(), f"mashroom-jobs-{user}", "notebooks")
    return os.path.join(root, _folder_name(job))


def _folder_name(job: str) -> str:
    """A job's name as one folder's name: kept when it is safe, else made safe and told
    apart from other names made the same by a hash."""
    safe = re.sub(r"[^\w.\- ]", "_", job).strip(" .") or "job"
    if safe == job and len(job) <= 100:
        return job
    return f"{safe[:80]}-{hashlib.sha256(job.encode()).hexdigest()[:8]}"


def _new_file(folder: str, stem: str, when: datetime, trigger: str, attempt: int) -> str:
    """A new file in ``folder``, named after the notebook and the run (made empty now, so
    two runs never take the same name)."""
    name = f"{stem}-{when:%Y-%m-%dT%H-%M-%S}-{trigger}" + (f"-{attempt}" if attempt > 1 else "")
    for n in range(1, 1000):
        path = os.path.join(folder, f"{name}{f'.{n}' if n > 1 else ''}.ipynb")
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            return path
        except FileExistsError:
            continue
    raise NotebookError(f"could not name a new file for the executed notebook in {folder}")


def _prune_folder(folder: str, keep: int) -> None:
    """Keep the newest ``keep`` executed notebooks in a job's folder (runs without a store)."""
    try:
        files = [os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".ipynb")]
        files.sort(key=os.path.getmtime, reverse=True)
    except OSError:
        return
    for path in files[keep:]:
        try:
            os.remove(path)
        except OSError:
            pass


def _absolute(value: object, what: str) -> str:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip():
        raise TargetError(f"a notebook's {what} must be a path, got {value!r}")
    if "\0" in value:
        raise TargetError(f"a notebook's {what} contains a NUL character: {value!r}")
    return os.path.abspath(os.path.expanduser(value))


def _home(path: str) -> str:
    home = os.path.expanduser("~")
    return "~" + path[len(home):] if home != "~" and path.startswith(home + os.sep) else path


def _import(module: str) -> Any:
    """Import one of Jupyter's packages a notebook run needs, or say what to install
    (and where: a Dask worker is another machine)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise TargetUnavailableError(
            f"{_where()} cannot run notebook jobs: {exc.name or module} is not installed "
            f"({_INSTALL})") from None


def _where() -> str:
    distributed = sys.modules.get("distributed")
    if distributed is not None:
        try:
            return f"the Dask worker at {distributed.get_worker().address}"
        except Exception:  # not in a worker
            pass
    return "this process"


def _first_line(cell: Mapping[str, Any]) -> str:
    lines = [line.strip() for line in _source(cell).splitlines() if line.strip()]
    line = lines[0] if lines else ""
    return line if len(line) <= 120 else line[:119] + "…"


def _report_progress(text: str | None, detail: str | None = None) -> None:
    """``mashroom_jobs.report_progress``, from the core (the context module imports the
    job module, which imports targets: importing it here would make a cycle)."""
    run = current_run()
    if run is not None:
        run.report_progress(text, detail)


def _report_artifact(path: str, revision: str) -> None:
    """``mashroom_jobs.context.report_artifact``, from the core (see above)."""
    run = current_run()
    if run is not None:
        run.artifact, run.revision = path, revision


# -- kernels: none outlives its run, nor this process -------------------------------------

#: process groups of the kernels running now (a kernel is the leader of its own group)
_live_kernels: dict[int, str] = {}
_live_lock = threading.Lock()


def _kill_group(group: int) -> None:
    try:
        os.killpg(group, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@atexit.register
def _kill_live_kernels() -> None:
    """At exit, kill the kernels of notebook runs still going (a run's thread is a daemon
    that dies with the process; its kernel would be left).  A process killed outright
    leaves them to ipykernel's watch on its parent, which ends them within a second."""
    with _live_lock:
        groups = list(_live_kernels)
        _live_kernels.clear()
    for group in groups:
        _kill_group(group)


# -- one run --------------------------------------------------------------------------------


class _Stopped(Exception):
    """The run was asked to stop (or timed out) and its kernel was interrupted."""


class _Run:
    """One run of a notebook target, on the run's thread (see the module docstring)."""

    def __init__(self, target: Notebook, context: Any) -> None:
        self.target = target
        service = getattr(getattr(context, "services", None), "background_jobs", None)
        self.service = service
        stop = getattr(context, "stop_requested", None)
        self.stop: Any = stop if stop is not None and hasattr(stop, "is_set") else None
        grace = getattr(service, "stop_grace", None)
        self.grace = float(grace) if isinstance(grace, (int, float)) else DEFAULT_STOP_GRACE
        self.sink = capture.current_buffer()
        self.run_record = current_run()
        self.group: int | None = None
        self.cell_number = 0
        self.cells = 0
        self.cell: Any = None
        self.error_reply: dict[str, Any] | None = None
        self.notebook: Any = None
        self.out_path: str | None = None
        self.last_save = 0.0
        #: what the kernel process writes to its stdout and stderr (see execute)
        self.log: Any = None

    # -- what the run says --

    def say(self, text: str) -> None:
        if not text.endswith("\n"):
            text += "\n"
        if self.sink is not None:
            self.sink.write(text)
        else:
            sys.stdout.write(text)

    def stopping(self) -> bool:
        """Asked to stop, timed out, or the service shut down (which stops nothing by
        itself: a kernel would run on, and outlive the service)."""
        return self.asked() or bool(getattr(self.service, "is_shut_down", False))

    def asked(self) -> bool:
        """The run's stop flag is set: a stop or a timeout."""
        return self.stop is not None and bool(self.stop.is_set())

    def where_now(self) -> str:
        if self.cell is None:
            return "while its kernel started"
        return f"during cell {self.cell_number} of {self.cells} ({_first_line(self.cell)!r})"

    # -- the run --

    def run(self) -> None:
        target = self.target
        notebook = target.load()
        revision = notebook_revision(target.snapshot if target.snapshot is not None
                                     else notebook)
        kernel, language = target.kernel_of(notebook)
        _check_parameter_names(target.parameters, language)
        unknown, tagged = inject_parameters(notebook, target.parameters, language, kernel)
        cwd = target.cwd or os.path.dirname(target.path)
        if not os.path.isdir(cwd):
            raise TargetUnavailableError(f"the working directory {cwd!r} of notebook "
                                         f"{target.path!r} does not exist")
        self.notebook = notebook
        self.out_path = path = self._output_path()
        _report_artifact(path, revision)
        notebook.metadata["mashroom_jobs"] = {
            "job": self._job_name(), "notebook": target.path, "revision": revision,
            "parameters": target.parameters, "kernel": kernel, "cwd": cwd,
            "started": self._now().isoformat(), "status": "running",
        }
        self.say(f"[mashroom-jobs] notebook {target.path} (revision {revision}), kernel "
                 f"{kernel}, in {cwd}")
        if target.parameters and not tagged:
            self.say("[mashroom-jobs] warning: the notebook has no cell tagged 'parameters': "
                     "the parameters were injected at the top")
        for name in unknown:  # papermill's words
            self.say(f"[mashroom-jobs] warning: Passed unknown parameter: {name} (the cell "
                     f"tagged 'parameters' does not assign it)")
        self.save(force=True)
        status = "failed"
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in the finally below)
        try:
            _run_coroutine(self.execute(kernel, cwd))
            status = "ok"
        except _Stopped:
            timed_out = self.run_record is not None and self.run_record.timed_out
            status = "timed out" if timed_out else "stopped"
            self.say(f"[mashroom-jobs] {status} {self.where_now()}: the kernel was "
                     f"interrupted, then shut down")
            if not self.asked():  # the host shut down
                raise ServiceShutdownError(
                    f"the service shut down {self.where_now()}: the notebook's kernel was "
                    f"interrupted, then shut down") from None
        finally:
            self.log.close()
            notebook.metadata["mashroom_jobs"]["status"] = status
            notebook.metadata["mashroom_jobs"]["ended"] = self._now().isoformat()
            self.save(force=True)
            self.say(f"[mashroom-jobs] executed notebook: {path}")
            self._prune()

    async def execute(self, kernel: str, cwd: str) -> None:
        nbclient = _import("nbclient")
        exceptions = _import("nbclient.exceptions")
        client = nbclient.NotebookClient(
            self.notebook, kernel_name=kernel, timeout=None, startup_timeout=STARTUP_TIMEOUT,
            allow_errors=False, record_timing=True, resources={"metadata": {"path": cwd}},
            on_cell_error=self._on_cell_error)
        km = client.create_kernel_manager()
        # the kernel's own folder, not the page that started this process
        env = {k: v for k, v in os.environ.items() if k != "JPY_SESSION_NAME"}
        _report_progress(f"starting kernel {kernel}")
        try:
            try:
                # what the kernel itself writes (its logs, a crash) goes to a file, not to
                # this process's streams: in a kernel, ipykernel would show it in whatever
                # cell runs (what the cells print comes as messages, into the notebook)
                await self.until_stopped(client.async_start_new_kernel(
                    cwd=cwd, env=env, stdout=self.log, stderr=self.log), km)
                self._track(km)
                await self.until_stopped(client.async_start_new_kernel_client(), km)
                reply = await self.until_stopped(self._kernel_info(client), km)
            except (_Stopped, asyncio.CancelledError):
                raise
            except Exception as exc:
                error = NotebookError(f"kernel {kernel!r} did not start for notebook "
                                      f"{self.target.path!r}: {error_text(exc)}")
                error.traceback_text = self.kernel_log(f"NotebookError: {error}")
                raise error from None
            if reply is not None and "language_info" in reply.get("content", {}):
                self.notebook.metadata["language_info"] = reply["content"]["language_info"]
            code = [(i, c) for i, c in enumerate(self.notebook.cells)
                    if c.cell_type == "code" and c.source.strip()
                    and client.skip_cells_with_tag not in _tags(c)]
            self.cells = len(code)
            for number, (index, cell) in enumerate(code, 1):
                self.cell_number, self.cell = number, cell
                _report_progress(f"cell {number} of {self.cells}", _first_line(cell))
                self.error_reply = None
                try:
                    await self.until_stopped(
                        client.async_execute_cell(cell, index, execution_count=number), km)
                except exceptions.CellExecutionError:
                    self.printed(cell)
                    if self.stopping():
                        raise _Stopped from None
                    raise self.cell_error(cell) from None
                except exceptions.DeadKernelError:
                    self.printed(cell)
                    if self.stopping():
                        raise _Stopped from None
                    raise self.kernel_died(cell, km) from None
                self.printed(cell)
                self.save()
        finally:
            await self.close(client, km)

    async def until_stopped(self, step: Any, km: Any) -> Any:
        """Await ``step``, looking at the stop flag meanwhile; on a stop, interrupt the
        kernel and give the step a moment to end, then raise :class:`_Stopped`."""
        task = asyncio.ensure_future(step)
        while True:
            done, _ = await asyncio.wait({task}, timeout=POLL)
            if done:
                return task.result()
            if self.stopping():
                break
        try:
            if km.has_kernel:
                await _maybe_await(km.interrupt_kernel())
        except Exception:  # (it may have died meanwhile)
            pass
        await asyncio.wait({task}, timeout=min(2.0, 0.2 * self.grace))
        if not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=1.0)
        if task.done() and not task.cancelled():
            task.exception()  # seen: an interrupted cell's error is the stop's
        raise _Stopped

    async def _kernel_info(self, client: Any) -> Any:
        msg_id = await _maybe_await(client.kc.kernel_info())
        return await client.async_wait_for_reply(msg_id)

    async def close(self, client: Any, km: Any) -> None:
        """Shut the kernel down: asked, then terminated, then killed (within the stop
        grace after a stop), its process group last; then free the connection."""
        wait = 0.6 * self.grace if self.stopping() else SHUTDOWN_WAIT
        if self.group is None:  # stopped while it started: its process may be there
            self._track(km)
        try:
            if km.has_kernel and await _maybe_await(km.is_alive()):
                km.shutdown_wait_time = wait
                await asyncio.wait_for(_maybe_await(km.shutdown_kernel(now=False)), wait + 2)
        except Exception:  # whatever happened, the group is killed below
            pass
        finally:
            if self.group is not None:
                _kill_group(self.group)  # what the kernel started, if it lives on
                with _live_lock:
                    _live_kernels.pop(self.group, None)
            try:
                if client.kc is not None:
                    await _maybe_await(client.kc.stop_channels())
                await _maybe_await(km.cleanup_resources())
            except Exception:
                pass

    def _track(self, km: Any) -> None:
        process = getattr(getattr(km, "provisioner", None), "process", None)
        if process is not None:
            self.group = process.pid  # started in a session of its own: its group's id
            with _live_lock:
                _live_kernels[process.pid] = self._job_name()

    def _on_cell_error(self, cell: Any, cell_index: int, execute_reply: Any) -> None:
        self.error_reply = execute_reply.get("content", {}) if execute_reply else None

    def cell_error(self, cell: Any) -> MashroomJobsError:
        reply = self.error_reply or {}
        ename, evalue = str(reply.get("ename", "Error")), str(reply.get("evalue", ""))
        tb = _ANSI.sub("", "\n".join(reply.get("traceback") or []))
        where = f"cell {self.cell_number} of {self.cells} ({_first_line(cell)!r})"
        if ename == "StdinNotImplementedError":
            return NotebookInputError(
                f"{where} asked for input: a notebook job has no one to answer (no standard "
                f"input); give the value as a parameter instead", tb)
        return NotebookCellError(
            f"{where} raised {ename}: {evalue}" if evalue else f"{where} raised {ename}",
            cell=self.cell_number, cells=self.cells, source=_first_line(cell), ename=ename,
            evalue=evalue, traceback_text=tb or f"{ename}: {evalue}")

    def kernel_died(self, cell: Any, km: Any) -> KernelDiedError:
        error = KernelDiedError(f"the kernel died {self.where_now()}: {_exit_status(km)}")
        # no frames of the kernel to show: the cell it was running, what the kernel
        # process wrote last, and what happened
        error.traceback_text = self.kernel_log(
            f"Cell {self.cell_number} of {self.cells}:\n{_source(cell).rstrip()}\n\n"
            f"KernelDiedError: {error}")
        return error

    def kernel_log(self, text: str) -> str:
        """``text``, after the end of what the kernel process wrote (when it wrote
        anything)."""
        try:
            self.log.flush()
            self.log.seek(0, os.SEEK_END)
            size = self.log.tell()
            self.log.seek(max(0, size - KERNEL_LOG_CHARS))
            written = self.log.read().decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            written = ""
        if not written:
            return text + "\n"
        cut = "…" if size > KERNEL_LOG_CHARS else ""
        return f"The kernel process wrote:\n{cut}{written}\n\n{text}\n"

    def printed(self, cell: Any) -> None:
        """What the cell printed, into the run's output."""
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                self.say(_source({"source": output.get("text", "")}))

    def save(self, force: bool = False) -> None:
        """Write the executed copy (at most twice a second while cells run)."""
        now = time.monotonic()
        if self.out_path is None or (not force and now - self.last_save < 0.5):
            return
        self.last_save = now
        nbformat = _import("nbformat")
        temporary = f"{self.out_path}.part"
        try:
            with open(temporary, "w", encoding="utf-8") as file:
                file.write(nbformat.writes(self.notebook))
            os.replace(temporary, self.out_path)
        except OSError as exc:
            self.say(f"[mashroom-jobs] could not save the executed notebook {self.out_path}: "
                     f"{exc}")

    # -- where --

    def _job_name(self) -> str:
        run = self.run_record
        if run is not None:
            return str(run.runtime.spec.name)
        return os.path.splitext(os.path.basename(self.target.path))[0]

    def _now(self) -> datetime:
        now = getattr(self.service, "now", None)
        moment = now() if callable(now) else datetime.now(timezone.utc)
        zone: tzinfo = self.run_record.runtime.spec.zone if self.run_record is not None \
            else timezone.utc
        return moment.astimezone(zone)

    def _output_path(self) -> str:
        run = self.run_record
        store = getattr(self.service, "store_path", None)
        folder = output_folder(self.target, self._job_name(), store)
        try:
            mark_folder(os.path.dirname(folder))
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise NotebookError(f"cannot make the folder for executed notebooks "
                                f"{folder}: {exc}") from None
        when = self._now()
        if run is not None and run.scheduled_for is not None:
            when = run.scheduled_for.astimezone(when.tzinfo)
        stem = os.path.splitext(os.path.basename(self.target.path))[0]
        return _new_file(folder, stem, when, run.trigger if run is not None else "run",
                         run.attempt if run is not None else 1)

    def _prune(self) -> None:
        if getattr(self.service, "store_path", None) is not None or self.out_path is None:
            return  # the store prunes them with its runs
        keep = getattr(self.service, "history_size", DEFAULT_KEEP)
        _prune_folder(os.path.dirname(self.out_path), keep if isinstance(keep, int)
                      else DEFAULT_KEEP)


def _exit_status(km: Any) -> str:
    process = getattr(getattr(km, "provisioner", None), "process", None)
    code = process.poll() if process is not None else None
    if code is None:
        return "it stopped answering"
    if code < 0:
        try:
            return f"it was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"it was killed by signal {-code}"
    return f"it exited with status {code}"


async def _maybe_await(value: Any) -> Any:
    if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
        return await value
    return value


def _run_coroutine(coroutine: Any) -> None:
    """Run ``coroutine`` to its end on a loop of its own: in this thread, or in a thread
    of its own when this one already runs a loop (an async job's)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coroutine)
        return
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(coroutine)
        except BaseException as exc:
            errors.append(exc)

    import contextvars

    thread = threading.Thread(target=contextvars.copy_context().run, args=(run,),
                              name="notebook-run", daemon=True)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


register_kind(Notebook.kind, Notebook.from_data)
