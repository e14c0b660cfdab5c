"""The ``subs`` console script, and the only module this project installs into site-packages.

The project's packages have short, generic names (``api``, ``config``, ``domain``, ``store``...)
that would collide with other distributions installed in the same environment, so they are not
installed at all: every entry point runs from the checkout (``python -m workers.main``,
``python -m api``, ``make dev``, ``make test``, the Docker image's ``/app``), where they are
importable as they are. This script puts the checkout first on ``sys.path`` and runs the CLI.
"""

from __future__ import annotations

import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent


def main() -> None:
    if str(CHECKOUT) not in sys.path:
        sys.path.insert(0, str(CHECKOUT))
    from cli.main import main as run

    run()


if __name__ == "__main__":
    main()
