"""localstripe for the suite: the process comes from the testing kit (one per session, fixture
``subscription_localstripe``); ``localstripe_url`` is the suite's name for it."""

from __future__ import annotations

import pytest

from subscription_testing.stripe_server import (  # noqa: F401
    CARD_DECLINED,
    CARD_OK,
    LocalStripe,
    free_port,
    start_localstripe,
    stripe_settings,
)


@pytest.fixture(scope="session")
def localstripe_url(subscription_localstripe: str) -> str:
    return subscription_localstripe
