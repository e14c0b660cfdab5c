"""Database operations of the payments service: short transactions, never held across a Stripe
call (on SQLite a write transaction locks the whole file; on PostgreSQL it would pin a
connection during network I/O).

Instead of locks, state changes are compare-and-set UPDATEs (``WHERE status = 'pending' AND
payment_intent_id IS NULL`` ...): when two workers race, exactly one update matches a row and
the loser re-reads what the winner wrote. Rows are returned detached (``expire_on_commit`` is off
in ``session_scope``), so callers can read them after the transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from sqlalchemy import func, or_, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, select

from invoices import store as invoices
from payments.errors import IdempotencyConflict
from payments.models import ChargeAttempt, PendingCharge, Refund, StripeCustomer
from store.engine import session_scope
from store.types import utcnow


def find_or_insert(engine: Engine, model: type[SQLModel], key: str,
                   make: Callable[[], SQLModel], same: Callable[[SQLModel], bool],
                   also: Callable[[Session, SQLModel], object] | None = None):
    """The row with this idempotency key, inserted by ``make`` if missing (and ``also``
    written in the same transaction: a charge's invoice). The unique constraint arbitrates
    concurrent inserts; a row built from a different request raises."""
    row = by_key(engine, model, key)
    if row is None:
        try:
            with session_scope(engine) as session:
                new = make()
                session.add(new)
                if also is not None:
                    session.flush()  # the INSERT first: on SQLite it takes the write lock
                    also(session, new)
        except IntegrityError:
            row = by_key(engine, model, key)  # a concurrent caller inserted it first...
            if row is None:
                raise  # ...or it was another constraint
        else:
            row = by_key(engine, model, key)
    if not same(row):
        raise IdempotencyConflict(f"idempotency key {key!r} was used for a different request")
    return row


def by_key(engine: Engine, model: type[SQLModel], key: str):
    with session_scope(engine) as session:
        return session.exec(select(model).where(model.idempotency_key == key)).first()


def by_id(engine: Engine, model: type[SQLModel], row_id: int):
    with session_scope(engine) as session:
        return session.get(model, row_id)


def compare_and_set(engine: Engine, model: type[SQLModel], row_id: int, where: Iterable,
                    **values) -> bool:
    """UPDATE one row if it still satisfies ``where``; True if this call changed it."""
    with session_scope(engine) as session:
        result = session.exec(update(model).where(model.id == row_id, *where).values(**values))
        return result.rowcount == 1


# Charges -------------------------------------------------------------------------------------

def store_intent(engine: Engine, attempt_id: int, payment_intent_id: str,
                 stripe_customer_id: str, payment_method_id: str) -> ChargeAttempt:
    """Record the intent of a pending attempt unless one is recorded already; the row after."""
    compare_and_set(engine, ChargeAttempt, attempt_id,
                    [ChargeAttempt.status == "pending", ChargeAttempt.payment_intent_id.is_(None)],
                    payment_intent_id=payment_intent_id, stripe_customer_id=stripe_customer_id,
                    payment_method_id=payment_method_id, updated_at=utcnow())
    return by_id(engine, ChargeAttempt, attempt_id)


def settle_charge(engine: Engine, attempt_id: int, status: str, decline_code: str | None,
                  message: str | None, *, only_without_intent: bool = False) -> ChargeAttempt:
    """Move a pending attempt to its outcome (first writer wins), and its invoice with it in
    the same transaction; the row after."""
    where = [ChargeAttempt.status == "pending"]
    if only_without_intent:
        where.append(ChargeAttempt.payment_intent_id.is_(None))
    with session_scope(engine) as session:
        changed = session.exec(update(ChargeAttempt).where(
            ChargeAttempt.id == attempt_id, *where).values(
            status=status, decline_code=decline_code, message=message,
            updated_at=utcnow())).rowcount == 1
        row = session.get(ChargeAttempt, attempt_id)
        if changed:
            invoices.charge_settled(
                session, purpose=row.purpose, charge_key=row.idempotency_key,
                subscription_id=row.subscription_id, period_key=row.period_key,
                status=row.status, amount=row.amount, payment_intent_id=row.payment_intent_id)
        return row


def mark_closed(engine: Engine, attempt_id: int) -> None:
    compare_and_set(engine, ChargeAttempt, attempt_id, [ChargeAttempt.closed_at.is_(None)],
                    closed_at=utcnow())


def attempts_to_close(engine: Engine, subscription_id: str) -> list[ChargeAttempt]:
    """Attempts whose intent might still be paid: pending ones, and declined ones whose intent
    was never cancelled (on Stripe a declined intent can be confirmed again)."""
    with session_scope(engine) as session:
        return list(session.exec(
            select(ChargeAttempt).where(
                ChargeAttempt.subscription_id == subscription_id,
                ChargeAttempt.closed_at.is_(None),
                or_(ChargeAttempt.status == "pending",
                    (ChargeAttempt.status == "declined")
                    & ChargeAttempt.payment_intent_id.is_not(None)))
            .order_by(ChargeAttempt.id)))


def last_succeeded_charge(engine: Engine, subscription_id: str, period_key: str,
                          purposes: tuple[str, ...]) -> ChargeAttempt | None:
    with session_scope(engine) as session:
        return session.exec(
            select(ChargeAttempt).where(
                ChargeAttempt.subscription_id == subscription_id,
                ChargeAttempt.period_key == period_key,
                ChargeAttempt.purpose.in_(purposes),
                ChargeAttempt.status == "succeeded")
            .order_by(ChargeAttempt.id.desc())).first()


def charge_of_intent(engine: Engine, payment_intent_id: str) -> ChargeAttempt | None:
    with session_scope(engine) as session:
        return session.exec(select(ChargeAttempt).where(
            ChargeAttempt.payment_intent_id == payment_intent_id)).first()


def open_attempt_totals(engine: Engine, subscription_id: str) -> tuple[int, int]:
    with session_scope(engine) as session:
        count, amount = session.exec(
            select(func.count(), func.coalesce(func.sum(ChargeAttempt.amount), 0)).where(
                ChargeAttempt.subscription_id == subscription_id,
                ChargeAttempt.status == "pending")).one()
        return int(count), int(amount)


# Refunds -------------------------------------------------------------------------------------

def take_refund_lease(engine: Engine, refund_id: int, now: datetime, until: datetime) -> bool:
    return compare_and_set(engine, Refund, refund_id,
                           [Refund.status == "pending",
                            or_(Refund.lease_until.is_(None), Refund.lease_until < now)],
                           lease_until=until, updated_at=now)


def release_refund_lease(engine: Engine, refund_id: int) -> None:
    compare_and_set(engine, Refund, refund_id, [Refund.status == "pending"], lease_until=None,
                    updated_at=utcnow())


def settle_refund(engine: Engine, refund_id: int, status: str, stripe_refund_id: str | None,
                  message: str | None) -> Refund:
    compare_and_set(engine, Refund, refund_id, [Refund.status == "pending"], status=status,
                    stripe_refund_id=stripe_refund_id, message=message, lease_until=None,
                    updated_at=utcnow())
    return by_id(engine, Refund, refund_id)


def refunded_total(engine: Engine, payment_intent_id: str, excluding_key: str) -> int:
    """Refunds of this intent under other keys, succeeded or still in flight."""
    with session_scope(engine) as session:
        return int(session.exec(
            select(func.coalesce(func.sum(Refund.amount), 0)).where(
                Refund.payment_intent_id == payment_intent_id,
                Refund.idempotency_key != excluding_key,
                Refund.status != "failed")).one())


# Pending charges -----------------------------------------------------------------------------

def resolve_pending(engine: Engine, subscription_id: str, currency: str, resolution_key: str,
                    kinds: tuple[str, ...], new_status: str) -> list[PendingCharge]:
    """Resolve the subscription's pending items once per ``resolution_key``: a retry with the
    same key finds the items of its first run and sweeps nothing added since."""
    with session_scope(engine) as session:
        mine = select(PendingCharge).where(PendingCharge.resolution_key == resolution_key)
        if session.exec(mine).first() is None:
            session.exec(update(PendingCharge).where(
                PendingCharge.subscription_id == subscription_id,
                PendingCharge.status == "pending",
                PendingCharge.currency == currency,
                PendingCharge.kind.in_(kinds),
            ).values(status=new_status, resolution_key=resolution_key, resolved_at=utcnow()))
        return list(session.exec(mine.order_by(PendingCharge.id)))


def pending_items(engine: Engine, subscription_id: str, status: str) -> list[PendingCharge]:
    with session_scope(engine) as session:
        return list(session.exec(select(PendingCharge).where(
            PendingCharge.subscription_id == subscription_id,
            PendingCharge.status == status).order_by(PendingCharge.id)))


# Customers -----------------------------------------------------------------------------------

def get_customer(engine: Engine, customer_id: str) -> StripeCustomer | None:
    with session_scope(engine) as session:
        return session.get(StripeCustomer, customer_id)


def insert_customer(engine: Engine, row: StripeCustomer) -> StripeCustomer:
    """Insert unless a concurrent call did; the stored row either way."""
    try:
        with session_scope(engine) as session:
            session.add(row)
    except IntegrityError:
        pass
    return get_customer(engine, row.customer_id)


def set_default_payment_method(engine: Engine, customer_id: str,
                               payment_method_id: str) -> StripeCustomer:
    with session_scope(engine) as session:
        session.exec(update(StripeCustomer).where(StripeCustomer.customer_id == customer_id)
                     .values(default_payment_method=payment_method_id, updated_at=utcnow()))
    return get_customer(engine, customer_id)
