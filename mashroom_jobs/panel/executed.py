"""A notebook job's executed notebooks in the panel: a link JupyterLab opens, or a rendering.

A link works when the file lies under the root of the Jupyter server this kernel belongs
to: the server is the one whose pid is the kernel's ``JPY_PARENT_PID`` (the server that
started the kernel says so in its environment), read from the ``jpserver-*.json`` files
of Jupyter's runtime folder, with its ``root_dir`` and ``base_url``; the link is
``{base_url}lab/tree/{path under the root}``, which JupyterLab (and Notebook 7, which
serves it too) opens.  Otherwise (a file outside the root, a kernel of Voila or of no
server) the panel shows a plain rendering of the notebook (:func:`render_notebook`): the
cells' sources and their text and image outputs, never their HTML or scripts.
"""

from __future__ import annotations

import base64
import glob
import html
import json
import os
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

__all__ = ["JupyterServer", "find_server", "notebook_link", "render_notebook"]

#: the most characters of a rendering (past them it is cut, saying so)
RENDER_LIMIT = 300_000
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_IMAGES = ("image/png", "image/jpeg", "image/gif")


@dataclass(frozen=True)
class JupyterServer:
    """The Jupyter server a kernel belongs to: where its files are, and its URL path."""

    root_dir: str
    base_url: str


def find_server(env: Any = None, runtime_dir: str | None = None) -> JupyterServer | None:
    """The server that started this kernel (see the module docstring), or None."""
    env = os.environ if env is None else env
    try:
        parent = int(env.get("JPY_PARENT_PID", ""))
    except ValueError:
        return None
    if runtime_dir is None:
        try:
            from jupyter_core.paths import jupyter_runtime_dir
        except ImportError:
            return None
        runtime_dir = jupyter_runtime_dir()
    for path in glob.glob(os.path.join(runtime_dir, "jpserver-*.json")):
        try:
            with open(path, encoding="utf-8") as file:
                info = json.load(file)
        except (OSError, ValueError):
            continue
        root = info.get("root_dir") or info.get("notebook_dir")
        if info.get("pid") == parent and isinstance(root, str) and root:
            base = str(info.get("base_url") or "/")
            return JupyterServer(os.path.realpath(os.path.expanduser(root)),
                                 base if base.endswith("/") else base + "/")
    return None


def notebook_link(path: str, server: JupyterServer | None) -> str | None:
    """The URL path that opens ``path`` in JupyterLab, when it lies under the server's
    root; else None."""
    if server is None:
        return None
    real = os.path.realpath(path)
    root = server.root_dir
    if real != root and not real.startswith(root.rstrip(os.sep) + os.sep):
        return None
    relative = os.path.relpath(real, root).replace(os.sep, "/")
    return f"{server.base_url}lab/tree/{quote(relative)}"


def render_notebook(notebook: dict[str, Any], limit: int = RENDER_LIMIT) -> str:
    """A plain HTML rendering of an executed notebook (its JSON): each cell's source, and
    its outputs as text (or as the image they are).  At most about ``limit`` characters."""
    parts: list[str] = []
    size = 0
    cells = notebook.get("cells", [])
    for number, cell in enumerate(cells):
        piece = _cell_html(cell)
        if size + len(piece) > limit:
            parts.append(f"<p><i>[{len(cells) - number} more cells: open the file to see "
                         f"them]</i></p>")
            break
        parts.append(piece)
        size += len(piece)
    return "".join(parts)


_PRE = "<pre style='margin:2px 0;white-space:pre-wrap;{}'>{}</pre>"
_SOURCE_STYLE = "background:var(--jp-cell-editor-background, #f7f7f7);padding:2px 4px"


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def _cell_html(cell: dict[str, Any]) -> str:
    source = html.escape(_text(cell.get("source")))
    if cell.get("cell_type") != "code":
        return _PRE.format("", source) if source.strip() else ""
    count = cell.get("execution_count")
    prompt = f"[{count}]" if count is not None else "[ ]"
    parts = [f"<div><small>{prompt}</small>" + _PRE.format(_SOURCE_STYLE, source)]
    for output in cell.get("outputs", []):
        kind = output.get("output_type")
        if kind == "stream":
            color = "color:var(--jp-error-color1, #c62828);" \
                if output.get("name") == "stderr" else ""
            parts.append(_PRE.format(color, html.escape(_text(output.get("text")))))
        elif kind == "error":
            text = _ANSI.sub("", "\n".join(output.get("traceback") or [])) or \
                f"{output.get('ename')}: {output.get('evalue')}"
            parts.append(_PRE.format("color:var(--jp-error-color1, #c62828);",
                                     html.escape(text)))
        elif kind in ("execute_result", "display_data"):
            data = output.get("data", {})
            image = next((m for m in _IMAGES if m in data), None)
            if image is not None:
                encoded = _text(data[image]).replace("\n", "")
                try:
                    base64.b64decode(encoded, validate=True)
                except ValueError:
                    continue
                parts.append(f"<img style='max-width:100%' src='data:{image};base64,"
                             f"{encoded}'/>")
            elif "text/plain" in data:
                parts.append(_PRE.format("", html.escape(_text(data["text/plain"]))))
    parts.append("</div>")
    return "".join(parts)
