"""``inv``'s entry point (the console script): runs the app of
``inventory_cli.app``, whose names (``app``, ``EXIT_CODES``, ...) it also
gives to whoever imports them from here.

A command is one short process, most of it start-up: importing typer and
building one command allocate ~100,000 objects that all live until the exit,
and the collector walks them again and again as they pile up (~30 young
collections, a tenth of ``inv stock show``, B1). So the collector is off
from the first import to the exit: what it would free is reference cycles,
which nothing here makes in bulk (requests, JSON and rows are trees), and
the end of the process frees those.
"""

from __future__ import annotations

import gc
import sys
from typing import Any


def main() -> None:
    gc.disable()
    try:
        from inventory_cli.app import app

        # standalone mode: typer/click print usage errors and exit 2 themselves
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        # The final collection at exit would still walk every object (it runs
        # with the collector off): frozen, they are left out of it. atexit
        # handlers still run.
        gc.freeze()


def __getattr__(name: str) -> Any:
    # ``from inventory_cli.main import app``: the app is imported on first use,
    # so that main() turns the collector off before typer is imported
    from inventory_cli import app

    return getattr(app, name)


if __name__ == "__main__":
    main()
