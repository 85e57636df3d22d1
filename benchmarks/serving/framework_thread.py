"""Every native framework call of a serving process on one thread.

PyTorch runs its intra-op work on OpenMP (libgomp), which keeps one thread team per calling thread. A server calls
models from many threads (uvicorn's worker pool, Streamlit's script threads) after loading them on another, so a
process soon holds several teams; once libgomp manages more threads than there are cores it stops spinning between
parallel regions and every op pays a wake-up. Measured on the 2-core AMX Xeon (fastai's lite0 network, batch 1):
15 ms when loaded and called on one thread, 30 ms when called from a thread other than the one that loaded it,
31 ms with ``OMP_WAIT_POLICY=PASSIVE`` — the API's native fastai and probe ran at twice their in-process latency.
Loading and calling every native model here keeps one team, and PyTorch and TensorFlow never run at once on the
same cores. OpenVINO manages its own threads and does not come through here.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="imgbench-framework")
_ident: list[int] = []  # the framework thread's id, once it has started


def _fresh_after_fork() -> None:
    """A forked child (a DataLoader worker, say) has no framework thread: it gets its own on first use."""
    global _executor
    _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="imgbench-framework")
    _ident.clear()


os.register_at_fork(after_in_child=_fresh_after_fork)


def on_framework_thread(function: Callable[..., T], *args, **kwargs) -> T:
    """``function(*args, **kwargs)`` run on the process's framework thread (inline when already on it), its result
    or exception returned to the caller."""
    if not _ident:
        _ident.append(_executor.submit(threading.get_ident).result())
    if threading.get_ident() == _ident[0]:
        return function(*args, **kwargs)
    return _executor.submit(function, *args, **kwargs).result()


class OnFrameworkThread:
    """A predictor whose ``predict`` runs on the framework thread; everything else is the wrapped predictor's."""

    def __init__(self, predictor):
        self._predictor = predictor

    def predict(self, images):
        return on_framework_thread(self._predictor.predict, images)

    def __getattr__(self, name: str):
        return getattr(self._predictor, name)
