"""``python -m mashroom_jobs``: the ``mashroom-jobs`` command."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
