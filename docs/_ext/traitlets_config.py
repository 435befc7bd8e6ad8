"""``{traitlets-config} module.Class``: a class's configurable traits, from their ``help=``.

traitlets' own ``Configurable.class_config_rst_doc()`` writes the text (each trait's name,
type, default and help), so the page says what the code says.
"""

from __future__ import annotations

import importlib
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from traitlets import TraitType


class TraitletsConfig(SphinxDirective):
    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        module, _, name = self.arguments[0].rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        text = cls.class_config_rst_doc()
        container = nodes.container()
        self.state.nested_parse(StringList(text.splitlines(), source=self.arguments[0]),
                                self.content_offset, container)
        return container.children


def _skip_traits(app: Sphinx, what: str, name: str, obj: Any, skip: bool,
                 options: Any) -> bool | None:
    """autodoc leaves traits out of the class members: the directive above lists them."""
    return True if isinstance(obj, TraitType) else None


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("traitlets-config", TraitletsConfig)
    app.connect("autodoc-skip-member", _skip_traits)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
