"""The tests' ports for servers of their own (tests.support.ports): free, and
never from the range outgoing connections take their source ports from."""

from __future__ import annotations

import socket

import pytest

from tests.support import ports


def test_ports_are_free_below_the_ephemeral_range_and_in_this_workers_block() -> None:
    given = [ports.free_port() for _ in range(20)]
    assert len(set(given)) == 20
    block = ports.worker_block()
    assert all(port in block and port < ports.ephemeral_start() for port in given)
    for port in given:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_in_use_is_passed_over() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports.free_port()))
        taken.listen()
        assert ports.free_port() != taken.getsockname()[1]
        for _ in range(ports.BLOCK - 1):  # round the block once
            assert ports.free_port() != taken.getsockname()[1]


@pytest.mark.parametrize(("worker", "index"), [("gw0", 0), ("gw3", 3), ("master", 0)])
def test_each_xdist_worker_has_a_block_of_its_own(
    monkeypatch: pytest.MonkeyPatch, worker: str, index: int
) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
    block = ports.worker_block()
    assert block.start == ports.FIRST + index * ports.BLOCK and len(block) == ports.BLOCK
