"""Fault-test fixtures: localstripe (session, from tests.fakes_stripe) behind a fault-injecting
proxy, fresh per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.stripe_proxy import StripeProxy


@pytest.fixture
def proxy(localstripe_url: str) -> Iterator[StripeProxy]:
    with StripeProxy(localstripe_url) as proxy:
        yield proxy
