"""The extension's hooks into IPython's other output channels: rich display and input.

What a job prints goes into its run through the core's stream proxy
(:mod:`mashroom_jobs.core.capture`).  IPython has two more channels that a job running
on a worker thread would otherwise send to whichever cell is running:

- rich display (``display(HTML(...))``, ``clear_output()``, a widget shown): the
  shell's display publisher is wrapped; in a run its text form goes into the run's
  output, followed by ``[not shown here: text/html]`` for what a text record cannot
  hold, and ``clear_output()`` does nothing (it would clear an unrelated cell);
- input (``input()``, ``getpass.getpass()``): in a run it raises :class:`JobInputError`
  at once, instead of opening an input box in an unrelated cell (or waiting for a
  terminal).  ipykernel puts its own ``input`` in ``builtins`` for each cell, so its
  ``raw_input`` and ``getpass`` are wrapped on the kernel as well as the builtins.

Outside a run (the calling thread, or a thread a run started, see :mod:`.core.capture`)
every wrapper only passes the call on.  Each is removed on unload when it is still in
place; one another library wrapped in turn stays, and only passes calls on.
"""

from __future__ import annotations

import builtins
import getpass
from collections.abc import Callable
from types import ModuleType
from typing import Any

from .core import capture
from .core.errors import JobInputError
from .core.runs import current_run

__all__ = ["KernelHooks", "display_text"]


def display_text(data: dict[str, Any]) -> str:
    """What a run's output keeps of one display: its text, and what it could not keep."""
    text = data.get("text/plain")
    others = sorted(key for key in data if key != "text/plain")
    parts = [] if text is None else [str(text)]
    if others:
        parts.append(f"[not shown here: {', '.join(others)}]")
    return "\n".join(parts) + "\n" if parts else ""


def _refuse_input(what: str) -> None:
    run = current_run()
    if run is None:
        return
    raise JobInputError(
        f"{what} was called by the background job {run.runtime.spec.name!r}: a job runs "
        f"unattended and nobody can answer it (a prompt would appear in an unrelated "
        f"cell); give the job what it needs as arguments or config instead")


class KernelHooks:
    """The wrappers one load installed (see the module docstring).

    Parameters
    ----------
    shell : InteractiveShell
        The shell whose display publisher (and kernel, in ipykernel) is wrapped.
    """

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.active = False
        self._undo: list[Callable[[], None]] = []

    def install(self) -> None:
        """Wrap the display publisher, the kernel's input and the builtin ``input``."""
        self.active = True
        publisher = getattr(self.shell, "display_pub", None)
        if publisher is not None:
            self._wrap(publisher, "publish", self._publish)
            self._wrap(publisher, "clear_output", self._clear_output)
        kernel = getattr(self.shell, "kernel", None)
        if kernel is not None:
            self._wrap(kernel, "raw_input", self._guard("input()"))
            self._wrap(kernel, "getpass", self._guard("getpass()"))
        self._wrap(builtins, "input", self._guard("input()"))
        self._wrap(getpass, "getpass", self._guard("getpass()"))

    def uninstall(self) -> None:
        """Remove the wrappers still in place (the others only pass calls on now)."""
        self.active = False
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()

    # -- the wrappers ---------------------------------------------------------------------

    def _wrap(self, owner: Any, name: str, make: Callable[[Callable[..., Any]], Any]) -> None:
        original = getattr(owner, name, None)
        if not callable(original):  # (a kernel of another kind: nothing to wrap)
            return
        wrapper = make(original)
        # a module's function, or the instance's own attribute: put back; a method the
        # instance takes from its class: delete ours
        own = isinstance(owner, ModuleType) or name in vars(owner)
        setattr(owner, name, wrapper)

        def undo() -> None:
            if getattr(owner, name, None) is not wrapper:
                return  # wrapped again since: ours stays, inactive
            if own:
                setattr(owner, name, original)
            else:
                delattr(owner, name)

        self._undo.append(undo)

    def _publish(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def publish(data: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            buffer = capture.current_buffer() if self.active else None
            if buffer is None:
                return original(data, *args, **kwargs)
            text = display_text(data)
            if text:
                buffer.write(text)
            return None

        return publish

    def _clear_output(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def clear_output(*args: Any, **kwargs: Any) -> Any:
            if self.active and capture.current_buffer() is not None:
                return None  # it would clear whichever cell is running
            return original(*args, **kwargs)

        return clear_output

    def _guard(self, what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def make(original: Callable[..., Any]) -> Callable[..., Any]:
            def guarded(*args: Any, **kwargs: Any) -> Any:
                if self.active:
                    _refuse_input(what)
                return original(*args, **kwargs)

            guarded.__doc__ = getattr(original, "__doc__", None)
            return guarded

        return make
