"""The testing kit for teams that build on the engine: years of subscription behaviour in
seconds, on the real worker, a time-skipping Temporal server, a database and localstripe.

As a pytest plugin (the ``subscription_testing.plugin`` entry point, installed with the project)
it gives the fixture ``subscription_kit``; see README "Testing your integration" and
docs/testing.md. Names are imported lazily, so loading the plugin costs nothing until a test
uses it.

Like the ``subs`` script (subscription_engine_cli.py) this package is installed into
site-packages while the engine's packages run from the checkout: importing it appends the
checkout to ``sys.path`` (after everything else, so it never shadows the caller's modules).
"""

from __future__ import annotations

import sys
from importlib import import_module
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
if str(CHECKOUT) not in sys.path:
    sys.path.append(str(CHECKOUT))

_EXPORTS = {
    "SubscriptionKit": "subscription_testing.kit",
    "Subscription": "subscription_testing.kit",
    "TimeDidNotSkip": "subscription_testing.kit",
    "wait_for": "subscription_testing.kit",
    "CARD_OK": "subscription_testing.stripe_server",
    "CARD_DECLINED": "subscription_testing.stripe_server",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'subscription_testing' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
