"""A helper process a test drives line by line: store_process.py, notebook_process.py."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from typing import Any


class Peer:
    """``python SCRIPT ARGS...``: lines to its stdin, a line (JSON or a word) from its stdout.

    Its stderr goes to a file, not a pipe: a pipe could fill, and the processes it starts
    (notebook kernels) inherit it.
    """

    def __init__(self, script: str, *args: str) -> None:
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115  (closed in end())
        self.proc = subprocess.Popen([sys.executable, script, *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log, text=True)

    def read(self) -> Any:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"the process ended: {self.stderr()[-3000:]}")
        return json.loads(line) if line.startswith(("{", "[")) else line.strip()

    def say(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def stderr(self) -> str:
        """What the process has written to its stderr so far."""
        self.log.seek(0)
        return self.log.read()

    def end(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout, self.log):
            if stream is not None:
                stream.close()
