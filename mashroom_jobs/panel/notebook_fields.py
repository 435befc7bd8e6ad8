"""The add-job form's notebook fields: a path and parameters, made a Notebook target."""

from __future__ import annotations

import json
import shlex
from typing import Any

import ipywidgets as widgets

from ..core.errors import TargetError
from ..targets.notebook import Notebook

__all__ = ["NotebookFields", "parse_parameters"]


def parse_parameters(text: str) -> dict[str, Any]:
    """The form's parameters: ``NAME=VALUE`` pairs separated by spaces (quote a value
    with spaces: ``title="Daily report"``), each value read as JSON when it is JSON and as
    text otherwise, as on the command line; or one JSON object (``{"day": "today"}``).

    Raises
    ------
    TargetError
        Saying what is wrong with the text.
    """
    from ..targets.spelling import assignments

    text = text.strip()
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise TargetError(f"the parameters are not a JSON object: {exc}") from None
        if not isinstance(value, dict):
            raise TargetError("the parameters must be a JSON object, {\"name\": value}")
        return value
    try:
        items = shlex.split(text)
    except ValueError as exc:
        raise TargetError(f"cannot read the parameters: {exc}") from None
    return assignments(items, "the parameter")


class NotebookFields:
    """A notebook's path and its parameters; ``box`` is what the form shows."""

    def __init__(self) -> None:
        self.path = widgets.Text(description="Notebook", placeholder="reports/daily.ipynb")
        self.parameters = widgets.Text(
            description="Parameters", placeholder="day=today limit=10",
            tooltip='NAME=VALUE ... (values read as JSON when they are JSON), or a JSON '
                    'object {"day": "today"}')
        self.box = widgets.HBox([self.path, self.parameters],
                                layout=widgets.Layout(flex_flow="row wrap"))

    def target(self) -> Notebook:
        """The Notebook the fields name (a relative path is relative to this kernel's
        working directory).

        Raises
        ------
        TargetError
            For a missing path or bad parameters (the target's own checks come when it
            is scheduled).
        """
        path = self.path.value.strip()
        if not path:
            raise TargetError("Give the notebook's path.")
        return Notebook(path, parse_parameters(self.parameters.value))
