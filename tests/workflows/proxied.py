"""Scenario tests against localstripe behind the fault proxy (tests.faults.stripe_proxy): import
both fixtures into the test module (``from tests.workflows.proxied import proxy, settings  #
noqa: F401``); ``settings`` then points the worker's Stripe client at the proxy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from config.settings import Settings
from tests.fakes_stripe import stripe_settings
from tests.faults.stripe_proxy import StripeProxy


@pytest.fixture
def proxy(localstripe_url: str) -> Iterator[StripeProxy]:
    with StripeProxy(localstripe_url) as proxy:
        yield proxy


@pytest.fixture
def settings(settings: Settings, proxy: StripeProxy) -> Settings:
    return settings.model_copy(update={"stripe": stripe_settings(proxy.url)})
