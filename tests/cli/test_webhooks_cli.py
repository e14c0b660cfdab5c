"""`subs webhooks dead` lists the deliveries given up after the last attempt and `subs webhooks
retry` queues one again, which the dispatcher then delivers; a delivery that is not dead is one
line and exit 1 (bad input: tests/cli/test_cli_errors.py)."""

from __future__ import annotations

import sys

from typer.testing import CliRunner

from cli.main import app
from config.settings import NotificationSettings, Settings
from notifications import outbox
from notifications.dispatcher import Dispatcher
from notifications.endpoints import create_endpoint
from store.engine import get_engine
from store.types import utcnow
from tests.cli.support import run
from tests.notifications.conftest import receiver  # noqa: F401 - a real HTTP receiver
from tests.notifications.support import driver_for, emitted, make_tenant
from tests.notifications.test_webhook_dispatch import signing_checked


def subs(*argv: str) -> tuple[int, str]:
    """In process (typer's runner): the commands that succeed; a refusal ends the process
    (os._exit), so those run as a subprocess."""
    result = CliRunner().invoke(app, list(argv))
    return result.exit_code, result.output


async def test_dead_delivery_listed_and_retried_by_hand(sqlite_url, receiver,  # noqa: F811
                                                       monkeypatch):
    engine = get_engine(sqlite_url)
    tenant = make_tenant(sqlite_url)
    endpoint = create_endpoint(engine, tenant.organization_id, receiver.url)
    (event, *_) = emitted(driver_for(tenant, utcnow()), tenant)
    outbox.record(engine, [event])
    receiver.statuses = [500]
    sender = Dispatcher(engine, NotificationSettings(
        smtp_port=9, smtp_timeout_seconds=1, max_attempts=1,
        webhook_allow_private_targets=True))
    await sender.run_once()
    env = {"SUBS_DATABASE_URL": sqlite_url}
    monkeypatch.setattr("cli.main.get_settings", lambda: Settings(database_url=sqlite_url))

    code, out = subs("webhooks", "dead")
    assert code == 0, out
    (line,) = out.strip().splitlines()
    delivery_id = line.split()[0]
    assert endpoint.id in line and event.id in line and "HTTP 500" in line

    code, out = subs("webhooks", "retry", delivery_id)
    assert (code, out.strip()) == (0, f"{delivery_id}: queued again for {endpoint.id} "
                                      f"({event.id})")
    code, out, err = await run(sys.executable, "-m", "cli.main", "webhooks", "retry",
                               delivery_id, env=env)
    assert code == 1 and err.strip() == f"delivery {delivery_id} is pending, not dead: " \
        "nothing to retry", err

    await sender.run_once()
    (headers, body), = receiver.deliveries
    assert signing_checked(headers, body, endpoint.secret)["id"] == event.id
