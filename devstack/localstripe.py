"""localstripe for the local stack, with its store in a file of this stack's own.

localstripe (1.15.10) loads and rewrites one fixed file, /tmp/localstripe.pickle, on every
write: two stacks on one machine, or a stack and a test run, would share and overwrite each
other's Stripe data, and `make clean` would leave it behind. This runs the unmodified server
with the store's load and dump pointed at the file given (``var/localstripe.pickle`` for
``make dev``), so it persists across restarts of the stack and goes away with ``var/``.

    python -m devstack.localstripe PICKLE PORT
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path


def use_store_file(path: Path) -> None:
    import localstripe.resources as resources

    def load(store) -> None:
        try:
            with path.open("rb") as f:
                saved = pickle.load(f)
        except FileNotFoundError:
            return
        store.clear()
        store.update(saved)

    def dump(store) -> None:
        with path.open("wb") as f:
            pickle.dump(store, f, protocol=pickle.HIGHEST_PROTOCOL)

    resources.Store.try_load_from_disk = load
    resources.Store.dump_to_disk = dump


def main(argv: list[str]) -> None:
    path, port = Path(argv[0]), argv[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    use_store_file(path)
    sys.argv = ["localstripe", "--port", port]
    from localstripe.server import start

    start()


if __name__ == "__main__":
    main(sys.argv[1:])
