"""Dynamic batching: calls that wait while the network runs share its next run, and each caller gets its own rows."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from benchmarks.serving.batching import DynamicBatcher


class GatedNetwork:
    """Doubles its input; the first run waits for ``release`` so that other calls pile up behind it."""

    def __init__(self, fail_on: float | None = None):
        self.entered, self.release = threading.Event(), threading.Event()
        self.batches: list[np.ndarray] = []
        self.fail_on = fail_on

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.batches.append(batch.copy())
        self.entered.set()
        self.release.wait(10)
        if self.fail_on is not None and self.fail_on in batch:
            raise ValueError("bad batch")
        return batch * 2


def pile_up(batcher: DynamicBatcher, network: GatedNetwork, first: np.ndarray, others: list[np.ndarray]):
    """Start ``first`` (it holds the network), queue ``others`` behind it, then let the network go."""
    pool = ThreadPoolExecutor(1 + len(others))
    futures = [pool.submit(batcher, first)]
    assert network.entered.wait(10)
    futures += [pool.submit(batcher, batch) for batch in others]
    deadline = time.monotonic() + 10
    while len(batcher._waiting) < len(others) and time.monotonic() < deadline:
        time.sleep(0.005)
    network.release.set()
    pool.shutdown(wait=True)
    return futures


def rows(*values: float) -> list[np.ndarray]:
    return [np.full((1, 3), value, dtype=np.float32) for value in values]


def test_calls_waiting_behind_a_run_share_the_next_one_and_each_gets_its_own_rows():
    network = GatedNetwork()
    batcher = DynamicBatcher(network)
    first, *others = rows(*range(8))
    futures = pile_up(batcher, network, first, others)

    for value, future in enumerate(futures):
        np.testing.assert_array_equal(future.result(), np.full((1, 3), 2.0 * value))
    assert [len(batch) for batch in network.batches] == [1, 7] and batcher.runs == 2
    assert sorted(network.batches[1][:, 0]) == list(range(1, 8))


def test_a_lone_call_runs_alone_on_its_own_batch():
    network = GatedNetwork()
    network.release.set()
    batcher = DynamicBatcher(network)
    batch = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(batcher(batch), batch * 2)
    assert len(network.batches) == 1 and network.batches[0].shape == (2, 3)


def test_a_run_never_exceeds_max_images_and_never_mixes_shapes():
    network = GatedNetwork()
    batcher = DynamicBatcher(network, max_images=3)
    first, *others = rows(*range(7))
    odd = np.zeros((1, 4), dtype=np.float32)  # another input shape: runs on its own
    futures = pile_up(batcher, network, first, [*others, odd])

    assert all(len(batch) <= 3 for batch in network.batches)
    assert {batch.shape[1] for batch in network.batches if len(batch) > 1} == {3}
    np.testing.assert_array_equal(futures[-1].result(), odd)
    for value, future in enumerate(futures[:-1]):
        np.testing.assert_array_equal(future.result(), np.full((1, 3), 2.0 * value))


def test_an_error_reaches_every_caller_of_that_run_and_the_next_call_still_works():
    network = GatedNetwork(fail_on=5.0)
    batcher = DynamicBatcher(network)
    first, *others = rows(0, 4, 5, 6)
    futures = pile_up(batcher, network, first, others)

    np.testing.assert_array_equal(futures[0].result(), np.zeros((1, 3)))  # ran alone, before the bad batch
    for future in futures[1:]:
        with pytest.raises(ValueError, match="bad batch"):
            future.result()
    np.testing.assert_array_equal(batcher(rows(1)[0]), np.full((1, 3), 2.0))


class SteppedNetwork:
    """Doubles its input; run k waits for ``gates[k]`` and signals ``entered[k]``, so a test orders the runs."""

    def __init__(self, runs: int):
        self.entered = [threading.Event() for _ in range(runs)]
        self.gates = [threading.Event() for _ in range(runs)]
        self.calls = 0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        k, self.calls = self.calls, self.calls + 1
        self.entered[k].set()
        self.gates[k].wait(10)
        return batch * 2


def test_a_call_whose_rows_are_ready_returns_without_waiting_for_the_next_run():
    """Two calls ride one run; a third arrives meanwhile and runs next (held open here). Both riders return as soon
    as their run ends, not after the third's (they used to queue for the network lock behind it)."""
    network = SteppedNetwork(3)
    batcher = DynamicBatcher(network)
    pool = ThreadPoolExecutor(4)
    first = pool.submit(batcher, np.ones((1, 3), np.float32))
    assert network.entered[0].wait(10)
    riders = [pool.submit(batcher, np.full((1, 3), v, np.float32)) for v in (2.0, 3.0)]
    while len(batcher._waiting) < 2:
        time.sleep(0.005)
    network.gates[0].set()
    assert network.entered[1].wait(10)  # the two riders' shared run
    late = pool.submit(batcher, np.full((1, 5), 4.0, np.float32))  # another shape: it cannot ride along
    while len(batcher._waiting) < 1:
        time.sleep(0.005)
    network.gates[1].set()
    try:
        results = [future.result(timeout=5) for future in riders]  # while the late call's run is still held
        assert sorted(float(r[0, 0]) for r in results) == [4.0, 6.0] and not late.done()
    finally:
        network.gates[2].set()
        pool.shutdown(wait=True)
    np.testing.assert_array_equal(late.result(), np.full((1, 5), 8.0)) and first.result()
    assert batcher.runs == 3
