"""Dynamic batching: concurrent calls of one network share its runs, as Triton's and TorchServe's batchers do.

A call that arrives while the network is busy waits; the next caller to get the network runs every waiting batch
of the same shape as one (up to ``max_images``) and hands each caller its own rows. A lone caller runs alone, so
one-request latency is unchanged; under load the network runs fewer, larger batches, which cost less per image
(OpenVINO, EfficientNet-Lite0 on 2 cores: about 15 % less per image at batch 4 than at batch 1), and the threads
that wait do not compete for the cores.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np


class _Call:
    __slots__ = ("batch", "done", "error", "result")

    def __init__(self, batch: np.ndarray):
        self.batch, self.done, self.result, self.error = batch, False, None, None


class DynamicBatcher:
    """``batcher(batch)`` returns ``network(batch)``, whichever thread's run computed it. Thread-safe; the network
    itself is only ever called by one thread at a time.

    Waiting callers sleep on one condition: at the end of every run each is woken, and one whose rows that run
    computed returns at once, never queueing behind the next batch for the network."""

    def __init__(self, network: Callable[[np.ndarray], np.ndarray], max_images: int = 32):
        self.network, self.max_images = network, max_images
        self._changed = threading.Condition()  # guards _waiting and _busy; notified when a run ends
        self._busy = False  # a thread is running the network
        self._waiting: list[_Call] = []
        self.runs = 0  # network runs so far (calls minus the ones that rode along)
        self.listeners: list[Callable[[int], None]] = []  # told each run's image count (the API's batch histogram)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        call = _Call(batch)
        with self._changed:
            self._waiting.append(call)
            while self._busy and not call.done:
                self._changed.wait()
            runner = not call.done  # nobody took it along: run it, with whatever else is waiting
            if runner:
                self._busy = True
                taken = self._take(call)
        if runner:
            try:
                self._run(taken)  # outside the condition: callers keep arriving and queueing meanwhile
            finally:
                with self._changed:
                    self._busy = False
                    self._changed.notify_all()
        if call.error is not None:
            raise call.error
        return call.result

    def _take(self, own: _Call) -> list[_Call]:
        """``own`` first, then the oldest waiting calls of the same shape while the batch stays within max_images
        (called with the condition held)."""
        taken, size = [own], len(own.batch)
        for call in self._waiting:
            if call is not own and call.batch.shape[1:] == own.batch.shape[1:]:
                if size + len(call.batch) > self.max_images:
                    break
                taken.append(call)
                size += len(call.batch)
        self._waiting = [call for call in self._waiting if call not in taken]  # identity: _Call has no __eq__
        return taken

    def _run(self, calls: list[_Call]) -> None:
        self.runs += 1
        try:
            batch = calls[0].batch if len(calls) == 1 else np.concatenate([call.batch for call in calls])
            for listener in self.listeners:
                listener(len(batch))
            output = self.network(batch)
            start = 0
            for call in calls:
                call.result = output[start : start + len(call.batch)]
                start += len(call.batch)
        except Exception as exc:  # noqa: BLE001  (every caller in the batch gets the error, not just this thread)
            for call in calls:
                call.error = exc
        finally:
            for call in calls:
                call.done = True
