"""The token bucket, deterministic: an injected clock, a sleep that moves that clock, no timing."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from payments.rate_limit import Bucket, TokenBucket, shared_bucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_requests_are_spaced_at_the_rate():
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=1, clock=clock, sleep=clock.sleep)
    waits = [bucket.reserve() for _ in range(4)]  # all at t=0
    assert waits == pytest.approx([0.0, 0.1, 0.2, 0.3])


def test_acquire_sleeps_until_its_slot_and_n_requests_take_n_minus_burst_over_rate():
    clock = FakeClock()
    bucket = TokenBucket(rate=20, burst=1, clock=clock, sleep=clock.sleep)
    for _ in range(21):
        bucket.acquire()
    assert clock.now == pytest.approx(1.0)  # 21 requests in the first second, never more
    assert clock.slept == pytest.approx([0.05] * 20)


def test_tokens_refill_up_to_the_burst_only():
    clock = FakeClock()
    bucket = TokenBucket(rate=5, burst=3, clock=clock, sleep=clock.sleep)
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.reserve() == pytest.approx(0.2)
    clock.now = 100.0  # idle for long: saved tokens are capped at the burst
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.reserve() == pytest.approx(0.2)


def test_partial_refill():
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=1, clock=clock, sleep=clock.sleep)
    assert bucket.reserve() == 0.0
    clock.now = 0.05  # half a token back
    assert bucket.reserve() == pytest.approx(0.05)


def reserve_concurrently(make_bucket: Callable[[], Bucket], threads: int,
                         each: int) -> list[list[float]]:
    """``threads`` threads released together, each reserving ``each`` slots from the bucket
    ``make_bucket`` gives it: every thread's waits, in the order it got them."""
    waits: list[list[float]] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def reserve() -> None:
        bucket = make_bucket()
        start.wait()
        mine = [bucket.reserve() for _ in range(each)]
        with lock:
            waits.append(mine)

    running = [threading.Thread(target=reserve) for _ in range(threads)]
    for t in running:
        t.start()
    for t in running:
        t.join()
    return waits


def test_concurrent_reservations_each_get_a_distinct_slot():
    clock = FakeClock()  # frozen: every slot must come from the reservation arithmetic
    bucket = TokenBucket(rate=50, burst=1, clock=clock, sleep=clock.sleep)
    waits = reserve_concurrently(lambda: bucket, threads=8, each=25)
    assert sorted(sum(waits, [])) == pytest.approx([k / 50 for k in range(200)])


def test_invalid_parameters_and_the_shared_bucket():
    with pytest.raises(ValueError):
        TokenBucket(rate=0)
    with pytest.raises(ValueError):
        TokenBucket(rate=1, burst=0.5)
    assert shared_bucket("sk_a", 20) is shared_bucket("sk_a", 20)
    assert shared_bucket("sk_a", 20) is not shared_bucket("sk_b", 20)
