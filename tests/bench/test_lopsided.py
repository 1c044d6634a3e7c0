"""A wrk run whose keep-alive connections all landed on one worker measures
that worker, not the server: the benchmark sees it in the workers' CPU and
runs it again (bench.__main__.busiest_share, LOPSIDED)."""

from __future__ import annotations

import pytest

from bench.__main__ import LOPSIDED, busiest_share


@pytest.mark.parametrize(
    ("before", "after", "share"),
    [
        ([10.0, 20.0], [13.5, 23.5], 0.5),  # both workers served
        ([10.0, 20.0], [14.49, 20.04], 0.99),  # one worker served all of it
        ([10.0], [14.0], 0.0),  # one worker only: nothing to compare
        ([10.0, 20.0], [10.0, 20.0], 0.0),  # nothing served
    ],
)
def test_the_busiest_workers_share(before: list[float], after: list[float], share: float) -> None:
    assert busiest_share(before, after) == pytest.approx(share, abs=0.01)


def test_a_run_on_one_worker_is_lopsided_and_a_fair_split_is_not() -> None:
    assert busiest_share([0.0, 0.0], [4.49, 0.04]) > LOPSIDED
    assert busiest_share([0.0, 0.0], [3.0, 3.4]) <= LOPSIDED
