"""Targets spelled on a command line (``mashroom-jobs jobs add``) or in a magic: the
options they share, and their ``KEY=VALUE`` arguments.

A value is read as JSON when it is JSON (``n=3``, ``flag=true``, ``names=["a","b"]``) and
as a string otherwise (``date=2026-12-01``, ``path=/tmp/x``): what papermill's ``-p``
users expect.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..core.errors import TargetError
from .base import Target
from .command import Command
from .function import FunctionRef
from .notebook import Notebook

__all__ = ["assignments", "target_from_options"]


def assignments(items: Sequence[str] | None, what: str) -> dict[str, Any]:
    """``["k=v", ...]`` as a dict (values JSON when they parse as JSON).

    Raises
    ------
    TargetError
        For an item without ``=`` or with an empty key, naming it.
    """
    result: dict[str, Any] = {}
    for item in items or ():
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise TargetError(f"{what} {item!r} must be KEY=VALUE")
        try:
            value: Any = json.loads(text)
        except ValueError:
            value = text
        result[key.strip()] = value
    return result


def target_from_options(*, command: str | None = None, shell: str | None = None,
                        call: str | None = None, args: Sequence[str] | None = None,
                        notebook: str | None = None, params: Sequence[str] | None = None,
                        cwd: str | None = None, env: Sequence[str] | None = None,
                        kernel: str | None = None, snapshot: bool = False,
                        output_dir: str | None = None) -> Target:
    """The one target named by exactly one of ``command`` (a command line, split as a
    shell would), ``shell`` (run by the shell), ``call`` (``module:function``, with
    ``args`` as its keyword arguments) or ``notebook`` (with ``params``, ``kernel``,
    ``snapshot``: read it now and run that copy, and ``output_dir``: where to keep the
    executed notebooks).

    Raises
    ------
    TargetError
        When none or several are given, or an option does not belong to the target.
    """
    given = [name for name, value in (("--command", command), ("--shell", shell),
                                      ("--call", call), ("--notebook", notebook))
             if value is not None]
    if len(given) != 1:
        raise TargetError("give exactly one target: --command 'CMD ARGS', --shell 'CMD | ...', "
                          "--call module:function or --notebook PATH"
                          + (f" (got {', '.join(given)})" if given else ""))
    if args and call is None:
        raise TargetError("--arg KEY=VALUE goes with --call")
    if params and notebook is None:
        raise TargetError("-p/--param KEY=VALUE goes with --notebook")
    for flag, value in (("--kernel", kernel), ("--snapshot", snapshot),
                        ("--output-dir", output_dir)):
        if value and notebook is None:
            raise TargetError(f"{flag} goes with --notebook")
    variables = assignments(env, "--env")
    if call is not None:
        if cwd or env:
            raise TargetError("--cwd and --env go with --command, --shell or --notebook")
        return FunctionRef(call, kwargs=assignments(args, "--arg"))
    if notebook is not None:
        if env:
            raise TargetError("--env goes with --command or --shell")
        return Notebook(notebook, assignments(params, "-p"), kernel=kernel, cwd=cwd,
                        snapshot=snapshot, output_dir=output_dir)
    text = command if command is not None else shell
    assert text is not None
    return Command(text, shell=shell is not None, cwd=cwd,
                   env={k: str(v) for k, v in variables.items()})
