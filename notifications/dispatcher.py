"""Delivers the outbox: claims due rows, sends each, marks it sent or backs off.

Runs as an asyncio task in the worker process; several dispatchers (processes or tasks) may
run at once, the lease in ``outbox.claim`` keeps them off each other's rows. Just before an
ending notice goes out, the read model is checked: a reactivated or postponed subscription
skips the stale notice instead of alarming the customer.

The emails of a round go out one after another over one SMTP connection in one thread, their
outcomes recorded in one transaction (a renewal burst paid a connection, EHLO, TLS and login
and three or four commits per mail); webhooks go to many receivers, so they are posted
concurrently, each on its own.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from config.settings import NotificationSettings
from eventlog import store as eventlog
from invoices.receipts import invoice_pdf
from notifications import outbox, senders, targets
from notifications.endpoints import get_endpoint
from notifications.models import OutboxMessage, OutboxStatus
from notifications.replays import queue_pending
from store.types import utcnow

log = logging.getLogger("notifications")


class Dispatcher:
    """``https_only`` outside development; ``resolver`` answers the webhook hosts' addresses
    and ``tls`` verifies their certificates (default: the system's CAs); tests give their own
    DNS and CA."""

    def __init__(self, engine: Engine, settings: NotificationSettings,
                 clock: Callable[[], datetime] = utcnow, *, https_only: bool = False,
                 resolver: targets.Resolver = targets.system_resolver,
                 tls: ssl.SSLContext | None = None) -> None:
        self.engine, self.settings, self.clock = engine, settings, clock
        self.https_only, self.resolver, self.tls = https_only, resolver, tls
        slowest = max(settings.smtp_timeout_seconds, settings.webhook_timeout_seconds)
        # Longer than any send can take, so a live holder never loses its lease mid-send.
        self.lease = timedelta(seconds=2 * slowest + 60)
        # An email of a round starts only with this much of the lease left (see _email_round).
        self.one_email = timedelta(seconds=2 * settings.smtp_timeout_seconds)

    async def run_once(self, now: datetime | None = None) -> int:
        """Deliver what is due now; the number of rows claimed. Replay requests queue their
        next events first (notifications/replays.py), so they go out on this same path."""
        now = now or self.clock()
        started = time.monotonic()  # no later than the lease's start
        try:
            await asyncio.to_thread(queue_pending, self.engine, now,
                                    batch=self.settings.replay_batch_size)
        except Exception:  # noqa: BLE001 - replays wait; deliveries go on
            log.exception("queueing webhook replays failed; retrying")
        claimed = await asyncio.to_thread(outbox.claim, self.engine, now,
                                          limit=self.settings.batch_size, lease=self.lease)
        emails = [m for m in claimed if m.channel == "email"]
        hooks = [m for m in claimed if m.channel != "email"]
        rounds = [asyncio.to_thread(self._email_round, emails, now, started)] if emails else []
        await asyncio.gather(*rounds, *(self._deliver(m, now) for m in hooks))
        return len(claimed)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set; a failing database only delays delivery."""
        while not stop.is_set():
            try:
                busy = await self.run_once()
            except Exception:  # noqa: BLE001 - keep the loop alive, the rows stay queued
                log.exception("notification dispatch failed; retrying")
                busy = 0
            if busy < self.settings.batch_size:
                try:
                    await asyncio.wait_for(stop.wait(), self.settings.poll_interval_seconds)
                except TimeoutError:
                    pass

    async def _deliver(self, message: OutboxMessage, now: datetime) -> None:
        """A webhook: posted on its own, concurrently with the round's others."""
        try:
            endpoint = await asyncio.to_thread(get_endpoint, self.engine, message.recipient)
            if endpoint is None:
                await asyncio.to_thread(outbox.mark_skipped, self.engine, message,
                                        "endpoint deleted")
                return
            await senders.post_webhook(message, endpoint, self.settings,
                                       https_only=self.https_only, resolver=self.resolver,
                                       tls=self.tls)
        except targets.TargetRefused as refused:  # retrying cannot help: failed for good
            log.warning("delivery of %s refused: %s", message.dedupe_key, refused.message)
            await asyncio.to_thread(outbox.mark_refused, self.engine, message,
                                    f"refused target ({refused.rule}): {refused.message}")
            return
        except Exception as exc:  # noqa: BLE001 - classified: for good, or retried
            await asyncio.to_thread(outbox.finish_many, self.engine,
                                    [(message, self._failed(message, now, exc))])
            return
        if not await asyncio.to_thread(outbox.mark_sent, self.engine, message, now):
            log.warning("%s was sent after its lease ran out", message.dedupe_key)

    def _email_round(self, emails: list[OutboxMessage], now: datetime, started: float) -> None:
        """Blocking: the round's emails over one connection, then their outcomes.

        Sent one after another, a round can outlast the lease a single send was sized for; an
        email starts only while a whole send (``one_email``) still fits in the lease, and the
        rest are given back untried for the next round instead of being sent twice (the lease
        run out, another dispatcher may have claimed them)."""
        deadline = started + (self.lease - self.one_email).total_seconds()
        outcomes: list[tuple[OutboxMessage, dict]] = []
        with senders.Mailer(self.settings) as mailer:
            for i, message in enumerate(emails):
                if i and time.monotonic() >= deadline:
                    log.warning("%d emails left for the next round: the lease runs out",
                                len(emails) - i)
                    outcomes += [(m, outbox.released(m, now)) for m in emails[i:]]
                    break
                outcomes.append((message, self._email(mailer, message, now)))
        self._record(outcomes)

    def _email(self, mailer: senders.Mailer, message: OutboxMessage, now: datetime) -> dict:
        """Staleness checked and the receipt rendered just before this email is sent; its
        outcome (``outbox`` values) for this row only."""
        try:
            stale = self._stale(message)
            if stale:
                return outbox.skipped(stale)
            mailer.send(senders.build_email(message, self.settings, now,
                                            self._attachments(message)))
        except Exception as exc:  # noqa: BLE001 - classified: for good, or retried
            return self._failed(message, now, exc)
        return outbox.sent(now)

    def _failed(self, message: OutboxMessage, now: datetime, exc: Exception) -> dict:
        if isinstance(exc, senders.PermanentFailure):
            # A setting is wrong (README "Deployment security"): every retry would fail alike.
            log.error("delivery of %s failed for good: %s", message.dedupe_key, exc)
            return outbox.failed(message, now, str(exc),
                                 backoff_initial=self.settings.backoff_initial,
                                 backoff_max=self.settings.backoff_max,
                                 max_attempts=message.attempts)
        log.warning("delivery of %s failed (attempt %d): %s", message.dedupe_key,
                    message.attempts, exc)
        return outbox.failed(message, now, f"{type(exc).__name__}: {exc}",
                             backoff_initial=self.settings.backoff_initial,
                             backoff_max=self.settings.backoff_max,
                             max_attempts=self.settings.max_attempts)

    def _record(self, outcomes: list[tuple[OutboxMessage, dict]]) -> None:
        """One transaction for the round; should it fail, each row alone, so one row's error
        does not lose the others' outcomes (an unrecorded row is sent again after its lease)."""
        try:
            finished = outbox.finish_many(self.engine, outcomes)
        except Exception:  # noqa: BLE001 - retried row by row below
            log.exception("recording %d email outcomes at once failed; one by one",
                          len(outcomes))
            finished = [self._record_one(message, values) for message, values in outcomes]
        for (message, values), done in zip(outcomes, finished):
            if done is False and values.get("status") == OutboxStatus.SENT.value:
                log.warning("%s was sent after its lease ran out", message.dedupe_key)

    def _record_one(self, message: OutboxMessage, values: dict) -> bool | None:
        try:
            return outbox.finish_many(self.engine, [(message, values)])[0]
        except Exception:  # noqa: BLE001 - the row stays leased, then is retried
            log.exception("recording the outcome of %s failed", message.dedupe_key)
            return None

    def _attachments(self, message: OutboxMessage) -> tuple[tuple[str, bytes], ...]:
        """A receipt carries its invoice's PDF, rendered now from the invoice."""
        invoice_id = message.payload.get("invoice_id")
        found = invoice_pdf(self.engine, invoice_id) if invoice_id else None
        return (found,) if found else ()

    def _stale(self, message: OutboxMessage) -> str | None:
        """Why an ending notice no longer applies, or None to send it."""
        if message.kind != "ending_notice":
            return None
        view = eventlog.get_view(self.engine, message.subscription_id)
        ends = datetime.fromisoformat(message.payload["about"])
        if view is None or view.ended_at is not None or view.cancel_at != ends:
            return "the scheduled cancellation changed (reactivated, postponed or ended)"
        return None
