"""Column types and clocks shared by every component's tables."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator

from domain.periods import require_utc


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Aware UTC in and out on both databases. SQLite keeps naive text, so values are stored as
    naive UTC there (making text order equal time order) and tagged UTC again on read. A naive
    value is taken as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def _to_utc(self, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = self._to_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class StrictUTCDateTime(UTCDateTime):
    """As UTCDateTime, but a naive value is a bug (ValueError), never a guess: the ledger's
    instants decide which credits may pay for what."""

    cache_ok = True

    def _to_utc(self, value: datetime) -> datetime:
        return require_utc(value)
