"""Optimised serving: the same trained network run by OpenVINO instead of its framework, chosen by SERVING_RUNTIME.

Why OpenVINO: one converter takes both the PyTorch (fastai) and the Keras models, straight from the framework
objects, with no ONNX detour (Keras' ONNX export turns its Normalization constants into graph inputs), and on the
2-core CPU it was the faster of the two runtimes measured (docs/api.md). The exported graph is the network only:
preprocessing and the final sigmoid stay in the family's predictor, so the served pixels are the scored pixels.

The export happens once per run, on first load, into ``RUN/optimised/openvino/`` (``benchmarks.models.compiled``:
written aside, then moved in whole); it is accepted only when its scores match the framework's own within
``PARITY_TOLERANCE`` on a fixed set of probe images, and the figure is kept in ``parity.json`` beside it.

Whatever the runtime, a network is served batched (``BatchedPredictor``): concurrent requests share its runs, so
the two runtimes are compared behind the same server.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from benchmarks.errors import BenchmarkError
from benchmarks.models.compiled import export_checked, load_checked, probe_images

from .batching import DynamicBatcher

RUNTIME_ENV = "SERVING_RUNTIME"
NATIVE = "native"
RUNTIMES = (NATIVE, "openvino")
EXPORT_DIR = Path("optimised") / "openvino"


class Exportable(Protocol):
    """What a family's native predictor offers so that its network can be served batched, and by another runtime."""

    labels: list[str]

    def network_input(self, images: list[Image.Image]) -> np.ndarray: ...  # preprocessed batch, as the network takes it

    def network_output(self, batch: np.ndarray) -> np.ndarray: ...  # the native network's raw outputs for it

    def scores_from_output(self, output: np.ndarray) -> np.ndarray: ...  # raw outputs → label scores in [0, 1]

    def export_openvino(self, xml_path: Path, example: np.ndarray) -> None: ...  # writes model.xml + model.bin


def serving_runtime(value: str | None = None) -> str:
    """The runtime asked for (argument, else ``SERVING_RUNTIME``, else native), checked against the known ones."""
    chosen = (value if value is not None else os.environ.get(RUNTIME_ENV, "")).strip().lower() or NATIVE
    if chosen not in RUNTIMES:
        raise BenchmarkError(f"{RUNTIME_ENV}={chosen!r} is not a serving runtime; use one of {', '.join(RUNTIMES)}")
    return chosen


class BatchedPredictor:
    """A family's predictor served with dynamic batching: preprocessing in each caller's thread, the network (the
    framework's own, or another runtime's export of it) run once for every caller waiting on it. Thread-safe.

    At 8 API clients on 2 AVX-512 cores it served about 1.6x the requests of calls made one at a time under a lock
    (native fastai 53-58 vs 31-35 requests/s, native Keras 75-81 vs 38-48; docs/api.md), with the same latency for
    a lone request; the scores stay the scored ones within PARITY_TOLERANCE whatever the batch."""

    thread_safe = True  # the API then holds no lock of its own around predict

    def __init__(
        self, native: Exportable, network: Callable[[np.ndarray], np.ndarray] | None = None, runtime: str = NATIVE
    ):
        self.native, self.runtime = native, runtime
        self.labels = list(native.labels)
        self.network = DynamicBatcher(network or native.network_output)

    def predict(self, images: list[Image.Image]) -> np.ndarray:
        return self.native.scores_from_output(self.network(self.native.network_input(images)))


class OptimisedPredictor(BatchedPredictor):
    """The family's predictor with its network swapped for the exported one (same preprocessing, same labels), and
    the parity figure its export was accepted with."""

    def __init__(self, native: Exportable, network: Callable[[np.ndarray], np.ndarray], runtime: str, parity: dict):
        super().__init__(native, network, runtime)
        self.parity = parity


def max_score_difference(native: Exportable, network: Callable[[np.ndarray], np.ndarray]) -> float:
    batch = native.network_input(probe_images())
    ours = native.scores_from_output(network(batch))
    theirs = native.scores_from_output(native.network_output(batch))
    return float(np.abs(ours - theirs).max())


def openvino_predictor(native: Exportable, run_dir: Path | str) -> OptimisedPredictor:
    """The run's OpenVINO export (made now when missing or damaged), wrapped to predict like ``native``."""
    run_dir = Path(run_dir)
    loaded = load_checked(run_dir / EXPORT_DIR) or export_checked(
        run_dir / EXPORT_DIR,
        lambda xml_path: native.export_openvino(xml_path, native.network_input(probe_images(1))),
        lambda network: max_score_difference(native, network),
        what=str(run_dir),
        fallback=f"serve it with {RUNTIME_ENV}=native",
        about={"compared": "label scores", "images": "probe_images()"},
    )
    return OptimisedPredictor(native, loaded[0], "openvino", loaded[1])
