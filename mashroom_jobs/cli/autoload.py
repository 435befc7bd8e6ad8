"""``mashroom-jobs autoload``: load the extension at every kernel start, by a marked block
in the IPython profile's ``ipython_kernel_config.py`` (and take it out again)."""

from __future__ import annotations

import argparse
import ast
import os
from pathlib import Path
from typing import Any

from .options import CommandFailure, UsageFailure

AUTOLOAD_BEGIN = "# >>> mashroom-jobs autoload >>>"
AUTOLOAD_END = "# <<< mashroom-jobs autoload <<<"
AUTOLOAD_BLOCK = (
    f"{AUTOLOAD_BEGIN}\n"
    "# Written by `mashroom-jobs autoload enable`; `mashroom-jobs autoload disable` removes it.\n"
    'c.InteractiveShellApp.extensions.append("mashroom_jobs")\n'
    f"{AUTOLOAD_END}\n"
)


def kernel_config_path(profile: str = "default") -> Path:
    """The ``ipython_kernel_config.py`` of an IPython profile (respects ``IPYTHONDIR``).

    Raises
    ------
    UsageFailure
        When IPython cannot use its folder (``IPYTHONDIR`` is a file, or not writable) and
        would fall back to a new temporary folder, which no kernel would read.
    """
    return _ipython_dir() / f"profile_{profile}" / "ipython_kernel_config.py"


def _ipython_dir() -> Path:
    import tempfile
    import warnings

    from IPython.paths import get_ipython_dir

    configured = os.environ.get("IPYTHONDIR")
    if configured and os.path.exists(configured) and not os.path.isdir(configured):
        raise UsageFailure(_unusable_ipython_dir(configured, "it is a file, not a folder"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the warning would be a second, vaguer line
        ipdir = get_ipython_dir()
    # IPython falls back to tempfile.mkdtemp() when its folder is not writable; the profile
    # written there would be lost, and `enable` would report success for nothing
    wanted = os.path.normpath(os.path.expanduser(configured or "~/.ipython"))
    fell_back = (ipdir != wanted and Path(ipdir).parent == Path(tempfile.gettempdir())
                 and Path(ipdir).name.startswith(tempfile.gettempprefix()))
    if fell_back:
        try:
            os.rmdir(ipdir)  # the empty folder IPython just made
        except OSError:
            pass
        path = Path(wanted)
        if path.exists():
            reason = "it is not a folder you can write to"
        else:
            reason = f"its parent {str(path.parent)!r} is not a folder you can write to"
        raise UsageFailure(_unusable_ipython_dir(configured or wanted, reason))
    return Path(ipdir)


def _unusable_ipython_dir(path: str, reason: str) -> str:
    return (f"IPYTHONDIR is {path!r}, which IPython cannot use ({reason}): it would put the "
            f"profile in a new temporary folder that no kernel reads; point IPYTHONDIR at a "
            f"folder you can write to")


# the config classes whose `extensions` a kernel loads (IPKernelApp is an InteractiveShellApp)
_EXTENSION_OWNERS = ("InteractiveShellApp", "IPKernelApp")


def _is_extensions(node: Any) -> bool:
    """``c.InteractiveShellApp.extensions`` or ``c.IPKernelApp.extensions``."""
    return (isinstance(node, ast.Attribute) and node.attr == "extensions"
            and isinstance(node.value, ast.Attribute) and node.value.attr in _EXTENSION_OWNERS)


def _adds_mashroom_jobs(node: Any) -> bool:
    """Whether a statement puts "mashroom_jobs" into the kernel's extensions."""
    def mentions(tree: Any) -> bool:
        return any(isinstance(n, ast.Constant) and n.value == "mashroom_jobs"
                   for n in ast.walk(tree))

    # not `+=`: on a config value that was never assigned it raises TypeError, and the kernel
    # then skips the whole file
    if isinstance(node, ast.Assign):
        return any(map(_is_extensions, node.targets)) and mentions(node.value)
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        func = node.value.func
        return (isinstance(func, ast.Attribute) and func.attr in ("append", "extend", "insert")
                and _is_extensions(func.value) and mentions(node.value))
    return False


def _users_lines(text: str, path: Path) -> list[tuple[int, int, str]]:
    """The statements outside our block that load mashroom_jobs: (first line, last line, text)."""
    try:
        tree = ast.parse(text, filename=str(path))
    except (SyntaxError, ValueError) as exc:  # ValueError: a NUL byte, before Python 3.12
        where = (f"{path}, line {exc.lineno}: {exc.msg}" if isinstance(exc, SyntaxError)
                 else f"{path}: {exc}")
        raise UsageFailure(
            f"{where}: the file is not valid Python, so it cannot be checked; fix it first"
        ) from None
    lines = text.splitlines()
    ours = range(0)
    if AUTOLOAD_BEGIN in lines and AUTOLOAD_END in lines:
        ours = range(lines.index(AUTOLOAD_BEGIN) + 1, lines.index(AUTOLOAD_END) + 2)
    statements = [n for n in ast.walk(tree) if isinstance(n, ast.stmt) and _adds_mashroom_jobs(n)]
    return sorted(
        (node.lineno, node.end_lineno or node.lineno, lines[node.lineno - 1].strip())
        for node in statements
        if node.lineno not in ours
    )


def _where(found: list[tuple[int, int, str]], path: Path) -> str:
    """``line 3 of /x/ipython_kernel_config.py: c.Inter...``, for a message."""
    first, last, source = found[0]
    if len(found) == 1 and first == last:
        return f"line {first} of {path}: {source}"
    spans = [f"{a}-{b}" if b > a else str(a) for a, b, _ in found]
    return f"line{'s' if len(found) > 1 or first != last else ''} {', '.join(spans)} of {path}"


def autoload_command(args: argparse.Namespace) -> int:
    profile = args.profile
    if (not profile or profile.startswith(".") or "\0" in profile
            or any(sep and sep in profile for sep in (os.sep, os.altsep))):
        raise UsageFailure(
            f"invalid profile name {profile!r}: a profile is a folder name such as 'default' "
            f"or 'jobs', without '/' and not starting with '.'"
        )
    path = kernel_config_path(profile)
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageFailure(f"cannot read {path}: {exc}") from None
    present = AUTOLOAD_BEGIN in text
    users = _users_lines(text, path)
    if args.action == "enable":
        if users:
            print(f"mashroom_jobs is already loaded at kernel start by {_where(users, path)}")
            return 0
        if present:
            print(f"mashroom_jobs is already loaded at kernel start ({path})")
            return 0
        if not text:
            text = "c = get_config()  # noqa\n"
        elif not text.endswith("\n"):
            text += "\n"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{text}\n{AUTOLOAD_BLOCK}", encoding="utf-8")
        print(f"mashroom_jobs will be loaded at kernel start: added to {path}")
        return 0
    if present:
        text = _remove_block(text)
        path.write_text(text, encoding="utf-8")
        users = _users_lines(text, path)  # line numbers as the file now is
        if users:
            # never claim success while the kernel still loads it
            raise CommandFailure(
                f"removed the block `mashroom-jobs autoload enable` wrote from {path}, but "
                f"mashroom_jobs is still loaded at kernel start by {_where(users, path)}; "
                f"remove that line to stop loading the extension"
            )
        print(f"mashroom_jobs will no longer be loaded at kernel start: removed from {path}")
        return 0
    if users:
        raise CommandFailure(
            f"mashroom_jobs is loaded at kernel start by {_where(users, path)}; "
            f"`mashroom-jobs autoload enable` did not write that line, so it is left alone: "
            f"remove it to stop loading the extension"
        )
    print(f"mashroom_jobs is not loaded at kernel start by {path}: nothing to do")
    return 0


def _remove_block(text: str) -> str:
    start = text.index(AUTOLOAD_BEGIN)
    end_marker = text.find(AUTOLOAD_END, start)
    end = len(text) if end_marker < 0 else end_marker + len(AUTOLOAD_END)
    if text[end:end + 1] == "\n":
        end += 1
    # also drop the blank line enable put before the block
    if text[:start].endswith("\n\n"):
        start -= 1
    return text[:start] + text[end:]
