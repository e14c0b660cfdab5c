"""SQL access for the ledger: the per-account write transaction, and reads that turn rows into
the domain's values (lots, debts, lock state). No rule is decided here."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlmodel import Session

from domain.credits import Debt, Lot, Take
from ledger.models import CreditAccount, CreditAllocation, CreditEntry
from ledger.results import EntryResult, LotUse
from store.engine import session_scope

PAYS_SELF = -1  # see append()

_spent = (
    select(func.coalesce(func.sum(CreditAllocation.amount), 0))
    .where(CreditAllocation.lot_id == CreditEntry.id)
    .correlate(CreditEntry)
    .scalar_subquery()
)
_paid = (
    select(func.coalesce(func.sum(CreditAllocation.amount), 0))
    .where(CreditAllocation.pays_entry_id == CreditEntry.id)
    .correlate(CreditEntry)
    .scalar_subquery()
)


@contextmanager
def account_transaction(engine: Engine, customer_id: str) -> Iterator[Session]:
    """A transaction holding the customer's write lock, so writes on one account serialize
    (balance checks and the writes they justify cannot interleave). PostgreSQL locks the
    account row (SELECT ... FOR UPDATE); SQLite takes the database write lock up front with
    BEGIN IMMEDIATE (a deferred transaction could read, then fail to upgrade to a writer)."""
    sqlite = engine.dialect.name == "sqlite"
    with session_scope(engine) as session:
        if sqlite:
            session.connection().exec_driver_sql("BEGIN IMMEDIATE")
        insert = sqlite_insert if sqlite else pg_insert
        session.execute(insert(CreditAccount).values(customer_id=customer_id)
                        .on_conflict_do_nothing())
        if not sqlite:
            session.execute(select(CreditAccount.customer_id)
                            .where(CreditAccount.customer_id == customer_id).with_for_update())
        yield session


@contextmanager
def snapshot(engine: Engine) -> Iterator[Session]:
    """A read-only transaction whose queries all see one consistent state (REPEATABLE READ on
    PostgreSQL; an explicit BEGIN on SQLite, whose WAL snapshot starts at the first read)."""
    with session_scope(engine) as session:
        if engine.dialect.name == "sqlite":
            session.connection().exec_driver_sql("BEGIN")
        else:
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        yield session


def find_entry(session: Session, key: str) -> CreditEntry | None:
    return session.scalars(select(CreditEntry).where(CreditEntry.idempotency_key == key)).first()


def lots(session: Session, customer_id: str, *, live_at: datetime | None = None,
         subscription_id: str | None = None, period_key: str | None = None) -> list[Lot]:
    """The customer's lots with credits left. ``live_at`` pre-filters lots that cannot be live
    then (not yet granted, or expired; purchased expiry is left to the policy)."""
    remaining = CreditEntry.amount - _spent
    query = select(CreditEntry.id, CreditEntry.credit_kind, remaining, CreditEntry.occurred_at,
                   CreditEntry.expires_at).where(
        CreditEntry.customer_id == customer_id, CreditEntry.entry_type == "grant",
        remaining > 0)
    if live_at is not None:
        query = query.where(CreditEntry.occurred_at <= live_at, or_(
            CreditEntry.expires_at.is_(None), CreditEntry.expires_at > live_at,
            CreditEntry.credit_kind == "purchased"))
    if subscription_id is not None:
        query = query.where(CreditEntry.credit_kind == "subscription",
                            CreditEntry.subscription_id == subscription_id,
                            CreditEntry.period_key == period_key)
    return [Lot(id=row[0], kind=row[1], remaining=int(row[2]), valid_from=row[3],
                expires_at=row[4]) for row in session.execute(query.order_by(CreditEntry.id))]


def debts(session: Session, customer_id: str) -> list[Debt]:
    """Usage entries not fully paid, oldest first (only those recorded with a shortfall)."""
    open_ = CreditEntry.amount - _paid
    query = select(CreditEntry.id, CreditEntry.occurred_at, open_).where(
        CreditEntry.customer_id == customer_id, CreditEntry.entry_type == "usage",
        CreditEntry.shortfall > 0, open_ > 0).order_by(CreditEntry.occurred_at, CreditEntry.id)
    return [Debt(id=row[0], incurred_at=row[1], open=int(row[2]))
            for row in session.execute(query)]


def locked_since(session: Session, customer_id: str) -> datetime | None:
    """When the current D16 lock began: the first lock entry after the last unlock (in the
    order they were recorded), or None when purchased credits are not locked."""
    query = select(CreditEntry.entry_type, CreditEntry.occurred_at).where(
        CreditEntry.customer_id == customer_id,
        CreditEntry.entry_type.in_(("lock", "unlock"))).order_by(CreditEntry.id)
    since = None
    for entry_type, occurred_at in session.execute(query):
        if entry_type == "unlock":
            since = None
        elif since is None:
            since = occurred_at
    return since


def append(session: Session, entry: CreditEntry,
           takes: Sequence[tuple[Take, int | None]] = ()) -> EntryResult:
    """Append an entry and its allocations, each (take, id of the entry it pays or None);
    ``PAYS_SELF`` stands for the new entry's own id (a debit or usage paying for itself)."""
    session.add(entry)
    session.flush()
    session.add_all([
        CreditAllocation(entry_id=entry.id, lot_id=take.lot_id, amount=take.amount,
                         pays_entry_id=entry.id if pays == PAYS_SELF else pays)
        for take, pays in takes])
    session.flush()
    return entry_result(session, entry)


def entry_result(session: Session, entry: CreditEntry) -> EntryResult:
    """The result of a recorded entry, rebuilt from rows: identical for a first call and for
    every replay of its idempotency key."""
    rows = session.execute(
        select(CreditAllocation.lot_id, CreditEntry.credit_kind, CreditAllocation.amount)
        .join(CreditEntry, CreditEntry.id == CreditAllocation.lot_id)
        .where(CreditAllocation.entry_id == entry.id).order_by(CreditAllocation.id))
    uses = [LotUse(lot_id=lot_id, kind=kind, amount=int(amount)) for lot_id, kind, amount in rows]
    applied = entry.amount if entry.entry_type == "grant" else sum(u.amount for u in uses)
    return EntryResult(
        entry_id=entry.id, idempotency_key=entry.idempotency_key, customer_id=entry.customer_id,
        entry_type=entry.entry_type, credit_kind=entry.credit_kind, amount=entry.amount,
        applied=applied, outstanding=entry.shortfall, occurred_at=entry.occurred_at, uses=uses)
