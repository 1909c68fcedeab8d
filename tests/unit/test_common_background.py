"""common/background.py: calls run on another thread, one at a time, in the order given; a call's
error comes back to the caller; leaving a block waits for the call in flight."""

from __future__ import annotations

import threading
import time

import pytest

from common.background import Background


def test_calls_run_in_order_on_another_thread_beside_the_caller():
    seen: list[tuple[int, int]] = []
    started = threading.Event()

    def slow(n: int) -> None:
        started.set()
        time.sleep(0.05)
        seen.append((n, threading.get_ident()))

    with Background() as work:
        work.run(slow, 1)
        assert started.wait(5)
        assert seen == []  # the caller went on while the call runs
        for n in range(2, 6):
            work.run(slow, n)
    assert [n for n, _ in seen] == [1, 2, 3, 4, 5]
    assert threading.get_ident() not in {ident for _, ident in seen}


def test_a_calls_error_is_raised_by_the_next_run_or_wait():
    def fail() -> None:
        raise OSError(28, "No space left on device")

    work = Background()
    work.run(fail)
    with pytest.raises(OSError, match="No space"):
        work.run(lambda: None)
    work.run(fail)
    with pytest.raises(OSError, match="No space"):
        work.wait()
    work.wait()  # nothing in flight any more


def test_leaving_a_block_waits_for_the_call_and_keeps_the_blocks_error():
    done = threading.Event()

    def slow_failure() -> None:
        time.sleep(0.05)
        done.set()
        raise OSError("the call's")

    with pytest.raises(ValueError, match="the block's"), Background() as work:
        work.run(slow_failure)
        raise ValueError("the block's")
    assert done.is_set()
