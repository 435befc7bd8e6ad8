"""The version of mashroom-jobs, written in this one place.

The package metadata reads it (``[tool.hatch.version]`` in pyproject.toml), and so do
``mashroom_jobs.__version__`` and ``mashroom-jobs --version``.
"""

__version__ = "0.1.0"
