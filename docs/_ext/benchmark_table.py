"""``{benchmark-table}``: a table of the performance page, read from a benchmark results file.

The page's figures come from one committed file written by ``python -m benchmarks --json``,
so refreshing them is running the benchmark again, never editing numbers by hand::

    ```{benchmark-table} ../benchmark-current.json
    :cases: 1,2
    ```

``:cases:`` keeps the rows of those case numbers (default: every row); ``:meta:`` (a flag)
shows the machine and the time of the run instead of a table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

from benchmarks.run import HEADER, format_met, format_ratio, format_value


class BenchmarkTable(SphinxDirective):
    required_arguments = 1
    option_spec: ClassVar[dict[str, Any]] = {"cases": directives.unchanged,
                                             "meta": directives.flag}

    def run(self) -> list[nodes.Node]:
        relative, path = self.env.relfn2path(self.arguments[0], self.env.docname)
        self.env.note_dependency(relative)
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        if "meta" in self.options:
            return [self._meta(document["meta"])]
        wanted = {c.strip() for c in self.options.get("cases", "").split(",") if c.strip()}
        rows = [r for r in document["table"]
                if not wanted or r["case"].split()[0] in wanted]
        if not rows:
            raise self.error(f"{self.arguments[0]} has no row of cases {sorted(wanted)}")
        # the cells exactly as `python -m benchmarks` prints them
        body = [[r["case"], r["metric"], format_value(r["mashroom_jobs"]),
                 format_value(r["apscheduler"]), format_ratio(r["ratio_aps_over_ours"]),
                 r["target"], format_met(r["met"])] for r in rows]
        return [self._table(HEADER, body)]

    def _meta(self, meta: dict[str, Any]) -> nodes.Node:
        machine = meta["machine"]
        versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if v)
        text = (f"Run started {meta['started']}, {meta['duration_s']} s; "
                f"{machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB, "
                f"{machine['os']}, {machine['implementation']} {machine['python']}; "
                f"{versions}; load average before {meta['load_before']}, "
                f"after {meta['load_after']}; rounds per paired case: {meta['repeat']}.")
        return nodes.paragraph(text=text)

    def _table(self, header: list[str], body: list[list[str]]) -> nodes.Node:
        table = nodes.table(classes=["benchmark-table"])
        group = nodes.tgroup(cols=len(header))
        table += group
        group += [nodes.colspec(colwidth=1) for _ in header]
        head = nodes.thead()
        group += head
        head += self._row(header)
        tbody = nodes.tbody()
        group += tbody
        for cells in body:
            tbody += self._row(cells)
        return table

    @staticmethod
    def _row(cells: list[str]) -> nodes.row:
        row = nodes.row()
        for text in cells:
            entry = nodes.entry()
            entry += nodes.paragraph(text=text)
            row += entry
        return row


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("benchmark-table", BenchmarkTable)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
