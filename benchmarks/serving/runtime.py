"""Optimised serving: the same trained network run by OpenVINO instead of its framework, chosen by SERVING_RUNTIME.

Why OpenVINO: one converter takes both the PyTorch (fastai) and the Keras models, straight from the framework
objects, with no ONNX detour (Keras' ONNX export turns its Normalization constants into graph inputs), and on the
2-core CPU it was the faster of the two runtimes measured (docs/api.md). The exported graph is the network only:
preprocessing and the final sigmoid stay in the family's predictor, so the served pixels are the scored pixels.

The export happens once per run, on first load, into ``RUN/optimised/openvino/`` (written aside, then moved in
whole); it is accepted only when its scores match the framework's own within ``PARITY_TOLERANCE`` on a fixed set
of probe images, and the figure is kept in ``parity.json`` beside it.

Whatever the runtime, a network is served batched (``BatchedPredictor``): concurrent requests share its runs, so
the two runtimes are compared behind the same server.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image, ImageDraw

from benchmarks.atomic import atomic_write_json
from benchmarks.errors import BenchmarkError, RunError, first_line

from .batching import DynamicBatcher

RUNTIME_ENV = "SERVING_RUNTIME"
NATIVE = "native"
RUNTIMES = (NATIVE, "openvino")
PARITY_TOLERANCE = 1e-4
EXPORT_DIR = Path("optimised") / "openvino"
GRAPH_FILE = "model.xml"  # + model.bin beside it
PARITY_FILE = "parity.json"


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


def probe_images(count: int = 6) -> list[Image.Image]:
    """Deterministic, varied pictures (noise, shapes, odd sizes) for the parity check: no dataset needed."""
    rng = np.random.default_rng(0)
    images = []
    for i in range(count):
        size = (160 + 37 * i, 224 - 11 * i)
        image = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
        draw = ImageDraw.Draw(image)
        for _ in range(4):
            x0, y0 = rng.integers(0, size[0] // 2), rng.integers(0, size[1] // 2)
            fill = tuple(int(v) for v in rng.integers(0, 256, 3))
            draw.ellipse((x0, y0, x0 + size[0] // 3, y0 + size[1] // 3), fill=fill)
        images.append(image)
    return images


class OpenVinoNetwork:
    """A compiled OpenVINO model; one synchronous infer request, so callers serialise calls (OptimisedPredictor's
    batcher does)."""

    def __init__(self, xml_path: Path):
        import openvino as ov

        try:
            # f32 inference: on CPUs with avx512_bf16 OpenVINO's default is bf16, which moved scores by up to 0.1
            # against the scored fp32 model (the served model must be the scored one)
            config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
            self.compiled = ov.Core().compile_model(str(xml_path), "CPU", config)
        except Exception as exc:  # noqa: BLE001  (a damaged export: one line, and the caller may re-export)
            raise RunError(f"{xml_path}: cannot compile the OpenVINO model ({first_line(exc)})") from None

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self.compiled(np.ascontiguousarray(batch))[0], dtype=np.float32)


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


def _export(native: Exportable, run_dir: Path) -> dict:
    """Export into a scratch folder in the run, check parity, then move the folder in place (all or nothing)."""
    target = run_dir / EXPORT_DIR
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    except OSError as exc:
        raise RunError(
            f"{target.parent}: cannot write the OpenVINO export here ({exc.strerror}); make the run folder writable "
            f"or serve it with {RUNTIME_ENV}=native"
        ) from None
    try:
        try:
            native.export_openvino(scratch / GRAPH_FILE, native.network_input(probe_images(1)))
        except Exception as exc:  # noqa: BLE001  (converter errors are many and deep: one line names the run)
            raise RunError(
                f"{run_dir}: OpenVINO export failed ({exc.__class__.__name__}: {first_line(exc)}); "
                f"serve it with {RUNTIME_ENV}=native"
            ) from None
        difference = max_score_difference(native, OpenVinoNetwork(scratch / GRAPH_FILE))
        parity = {"max_abs_score_difference": difference, "tolerance": PARITY_TOLERANCE, "images": "probe_images()"}
        if not difference <= PARITY_TOLERANCE:
            raise RunError(
                f"{run_dir}: the OpenVINO export differs from the native model by {difference:.2g} "
                f"(> {PARITY_TOLERANCE:g}); serve it with {RUNTIME_ENV}=native"
            )
        atomic_write_json(scratch / PARITY_FILE, parity)
        shutil.rmtree(target, ignore_errors=True)
        scratch.rename(target)
        return parity
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def openvino_predictor(native: Exportable, run_dir: Path | str) -> OptimisedPredictor:
    """The run's OpenVINO export (made now when missing or damaged), wrapped to predict like ``native``."""
    run_dir = Path(run_dir)
    folder = run_dir / EXPORT_DIR
    try:
        parity = json.loads((folder / PARITY_FILE).read_text())
        network = OpenVinoNetwork(folder / GRAPH_FILE)
    except (OSError, ValueError, RunError):
        parity = _export(native, run_dir)
        network = OpenVinoNetwork(folder / GRAPH_FILE)
    return OptimisedPredictor(native, network, "openvino", parity)
