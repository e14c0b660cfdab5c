"""Invalid and refused requests, ended subscriptions, stale payment outcomes, time zones."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pydantic import TypeAdapter, ValidationError

from domain import lifecycle
from domain.commands import PaymentOutcome
from domain.errors import RequestInvalid, RequestRefused
from domain.lifecycle import ENDED_MESSAGE
from domain.model import Status
from domain.requests import Cancel, PaymentMethodUpdated, Postpone, Reactivate, Request
from tests.domain.helpers import DECLINE, HOLD, SECOND, Driver, at

T0 = at(2024, 1, 31, 12)
END = at(2024, 2, 29, 12)
MID = at(2024, 2, 14, 12)


def active() -> Driver:
    return Driver.create(T0)


def non_renewing() -> Driver:
    d = active()
    d.request(Cancel(mode="at_period_end"), MID)
    return d


# Invalid input: RequestInvalid naming the field, nothing changed ----------------------------------


INVALID = [
    (Cancel(mode="at_date", cancel_at=MID - SECOND), "cancel_at_not_in_future"),
    (Cancel(mode="at_date", cancel_at=MID), "cancel_at_not_in_future"),
    (Cancel(mode="at_date", cancel_at=T0 - timedelta(days=30)), "cancel_at_not_in_future"),
    (Cancel(mode="immediately", cancel_at=at(2024, 2, 20)), "cancel_at_not_allowed"),
    (Cancel(mode="at_period_end", cancel_at=at(2024, 2, 20)), "cancel_at_not_allowed"),
    (Cancel(mode="at_date"), "cancel_at_required"),
]
INVALID_IDS = ["at_date-past", "at_date-now", "at_date-long-ago", "immediately-with-cancel_at",
               "at_period_end-with-cancel_at", "at_date-missing"]


@pytest.mark.parametrize("factory", [active, non_renewing], ids=["active", "non_renewing"])
@pytest.mark.parametrize(("request_", "code"), INVALID, ids=INVALID_IDS)
def test_invalid_requests_name_the_field_and_change_nothing(factory, request_, code):
    d = factory()
    before, mark = d.state, d.mark
    with pytest.raises(RequestInvalid) as err:
        d.request(request_, MID)
    assert err.value.code == code
    assert err.value.field == "cancel_at"
    assert "cancel_at" in err.value.message
    assert err.value.http_status == 422
    assert isinstance(err.value, RequestRefused)
    assert d.state == before and d.since(mark) == []
    with pytest.raises(RequestInvalid) as again:
        lifecycle.validate(before, request_, MID)
    assert again.value.code == code


def test_naive_cancel_at_is_rejected_by_the_request_model():
    with pytest.raises(ValidationError, match="cancel_at must be timezone-aware"):
        Cancel(mode="at_date", cancel_at=datetime(2024, 2, 20))


def test_aware_cancel_at_in_another_zone_is_normalised_to_utc():
    req = Cancel(mode="at_date", cancel_at=datetime(2024, 2, 20, 1, tzinfo=timezone(
        timedelta(hours=1))))
    assert req.cancel_at == at(2024, 2, 20) and req.cancel_at.tzinfo is not None
    d = active()
    d.request(req, MID)
    assert d.state.cancel_at == at(2024, 2, 20)


def test_requests_parse_through_the_discriminated_union():
    adapter = TypeAdapter(Request)
    assert isinstance(adapter.validate_python({"kind": "reactivate"}), Reactivate)
    parsed = adapter.validate_python({"kind": "cancel", "mode": "at_date",
                                      "cancel_at": "2024-02-20T00:00:00Z"})
    assert isinstance(parsed, Cancel) and parsed.cancel_at == at(2024, 2, 20)
    with pytest.raises(ValidationError):
        adapter.validate_python({"kind": "suspend"})
    with pytest.raises(ValidationError):
        adapter.validate_python({"kind": "cancel", "feedback": "meh"})
    with pytest.raises(ValidationError):
        adapter.validate_python({"kind": "cancel", "comment": "x" * 501})


# Ended subscriptions refuse everything ----------------------------------------------------------


def _ended_immediately() -> Driver:
    d = active()
    d.request(Cancel(mode="immediately"), MID)
    return d


def _ended_at_period_end() -> Driver:
    d = non_renewing()
    d.advance(END)
    return d


def _ended_by_dunning() -> Driver:
    d = Driver.create(T0, default=DECLINE)
    d.advance(at(2024, 3, 1))
    return d


@pytest.mark.parametrize("ended", [_ended_immediately, _ended_at_period_end, _ended_by_dunning],
                         ids=["immediately", "at_period_end", "dunning"])
@pytest.mark.parametrize(("request_", "message"), [
    (Reactivate(), ENDED_MESSAGE),
    (Cancel(mode="immediately"), "the subscription has already ended; it cannot be cancelled "
                                 "again"),
    (Cancel(mode="at_period_end"), "the subscription has already ended; it cannot be cancelled "
                                   "again"),
    (Cancel(mode="at_date"), "the subscription has already ended; it cannot be cancelled again"),
    (Postpone(cancel_at=at(2025, 1, 1)), "the subscription has already ended; it cannot be "
                                         "postponed"),
    (PaymentMethodUpdated(), "the subscription has already ended; it cannot be updated"),
], ids=["reactivate", "cancel-immediately", "cancel-at_period_end", "cancel-at_date",
        "postpone", "payment_method"])
def test_requests_on_ended_subscriptions_are_refused(ended, request_, message):
    d = ended()
    assert d.state.status == Status.CANCELED
    before = d.state
    now = at(2024, 6, 1)
    with pytest.raises(RequestRefused) as err:
        d.request(request_, now)
    assert type(err.value) is RequestRefused  # 409, not 422, even for bad values
    assert err.value.code == "subscription_ended"
    assert err.value.message == message
    assert d.state == before
    with pytest.raises(RequestRefused):
        lifecycle.validate(before, request_, now)


def test_canceled_is_terminal_for_time():
    d = _ended_immediately()
    ended = d.state
    decision = lifecycle.advance(ended, at(2030, 1, 1))
    assert decision.state == ended and decision.commands == ()
    assert lifecycle.next_wakeup(ended) is None


# Stale payment outcomes --------------------------------------------------------------------------


def _outcome(key: str, status: str = "succeeded") -> PaymentOutcome:
    return PaymentOutcome(idempotency_key=key, status=status,  # type: ignore[arg-type]
                          amount=3000 if status == "succeeded" else 0, payment_intent_id="pi_x")


@pytest.mark.parametrize("status", ["succeeded", "declined"])
def test_outcome_with_an_unknown_key_is_ignored(status):
    d = Driver.create(T0, outcomes=[HOLD])
    before = d.state
    decision = lifecycle.apply_outcome(before, _outcome("sub_1:20240131T120000Z:2", status), T0)
    assert decision.state == before and decision.commands == ()


def test_duplicate_outcome_is_ignored():
    d = active()
    before = d.state
    decision = lifecycle.apply_outcome(before, _outcome("sub_1:20240131T120000Z:1"), MID)
    assert decision.state == before and decision.commands == ()
    decision = lifecycle.apply_outcome(before, _outcome("sub_1:20240131T120000Z:1", "declined"),
                                       MID)
    assert decision.state == before and decision.commands == ()


def test_outcome_of_an_earlier_attempt_is_ignored_during_a_retry():
    d = Driver.create(T0).script(DECLINE, HOLD)
    d.advance(at(2024, 3, 3, 12))
    assert d.state.awaiting_charge == "sub_1:20240229T120000Z:2"
    before = d.state
    d.feed(_outcome("sub_1:20240229T120000Z:1"), at(2024, 3, 3, 13))
    assert d.state == before
    d.resolve()
    assert d.state.status == Status.ACTIVE


def test_outcome_after_an_immediate_cancel_is_ignored():
    d = _ended_immediately()
    before = d.state
    decision = lifecycle.apply_outcome(before, _outcome("sub_1:20240131T120000Z:1"), MID)
    assert decision.state == before and decision.commands == ()


# Charges in flight ------------------------------------------------------------------------------


def test_handle_refuses_to_run_while_a_charge_is_in_flight():
    d = Driver.create(T0, outcomes=[HOLD])
    with pytest.raises(RuntimeError, match="charge is in flight"):
        lifecycle.handle(d.state, Cancel(mode="immediately"), T0)


def test_validate_assumes_the_charge_in_flight_succeeds():
    d = Driver.create(T0, outcomes=[HOLD])
    assert lifecycle.validate(d.state, Cancel(mode="at_period_end"), T0 + SECOND) is None
    with pytest.raises(RequestRefused) as err:
        lifecycle.validate(d.state, Reactivate(), T0 + SECOND)
    assert err.value.code == "nothing_to_reactivate"


def test_validate_during_a_renewal_charge_in_flight_at_a_later_instant():
    d = Driver.create(T0).script(HOLD)
    d.advance(END)
    assert d.state.awaiting_charge is not None
    # Assumed paid, then advanced two more periods: still active, so at_period_end is fine.
    assert lifecycle.validate(d.state, Cancel(mode="at_period_end"), at(2024, 5, 1)) is None


# Time zones -------------------------------------------------------------------------------------

NAIVE = datetime(2024, 2, 14, 12)


@pytest.mark.parametrize("call", [
    lambda s: lifecycle.advance(s, NAIVE),
    lambda s: lifecycle.handle(s, Reactivate(), NAIVE),
    lambda s: lifecycle.validate(s, Reactivate(), NAIVE),
    lambda s: lifecycle.period_of(s, NAIVE),
], ids=["advance", "handle", "validate", "period_of"])
def test_naive_now_is_rejected(call):
    with pytest.raises(ValueError, match="timezone-aware"):
        call(active().state)


def test_apply_outcome_rejects_a_naive_now():
    d = Driver.create(T0, outcomes=[HOLD])
    with pytest.raises(ValueError, match="timezone-aware"):
        lifecycle.apply_outcome(d.state, PaymentOutcome(
            idempotency_key=d.state.awaiting_charge, status="declined", amount=0),
            datetime(2024, 1, 31, 12))


def test_period_of_reports_the_anchor_period_containing_an_instant():
    s = active().state
    assert lifecycle.period_of(s, at(2024, 3, 1)) == "20240229T120000Z"
    assert lifecycle.period_of(s, at(2025, 2, 28, 12)) == "20250228T120000Z"
