"""One latency protocol for every model that can score an image, whatever its framework or where it came from.

Why one: a leaderboard column that is batched over 600 images for one model, one image at a time for another
and feature extraction alone for a third compares nothing. Here every run is timed through the predictor it is
served with (``load_predictor``: the same object the API and the dashboard use), from decoded PIL images to label
scores, preprocessing included: a warm-up, then ``repeats`` timed calls at batch 1 and at batch 32 on test images,
with the thread count set alike for PyTorch and TensorFlow and recorded beside the hardware. Runs without a local
model (the prior, ingested batch predictions, the Vision API) get no figure, and say why, instead of a 0.
"""

from __future__ import annotations

import os
import statistics
import time
from datetime import UTC, datetime

from PIL import Image

from benchmarks.errors import BenchmarkError
from benchmarks.evaluation.latency import BATCH, LATENCY_KEY
from benchmarks.evaluation.machine import environment
from benchmarks.evaluation.results import Run

from .framework_thread import on_framework_thread
from .predictors import can_predict, load_predictor, runtime_of, why_no_model

MEASURED_IMAGES = 8  # distinct test images cycled through (decoded once, outside the timing)
PROTOCOL = "v1: served predictor, PIL image → label scores incl. preprocessing; warm-up, then timed calls"


def pin_threads(threads: int | None = None) -> dict:
    """The same intra-op thread count for PyTorch and TensorFlow (default: every core), and what each really uses.

    TensorFlow takes the setting only before its runtime starts; a process that already ran a model keeps what
    it had, and the record says so."""
    threads = threads or os.cpu_count() or 1
    used = {"requested": threads}
    import torch

    from benchmarks.models import torch_first  # noqa: F401  (torch and torchvision before TensorFlow, or a later load segfaults)

    torch.set_num_threads(threads)  # OpenMP's setting is per thread: here, and on the thread models run on
    on_framework_thread(torch.set_num_threads, threads)
    used["torch"] = on_framework_thread(torch.get_num_threads)
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    except RuntimeError:  # runtime already initialised
        pass
    used["tensorflow_intra_op"] = tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()
    return used


def _timed(call, repeats: int) -> list[float]:
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return seconds


def _p95(values: list[float]) -> float:
    return sorted(values)[min(len(values) - 1, round(0.95 * (len(values) - 1)))]


def measure_predictor(predictor, images: list[Image.Image], *, repeats: int = 20, warmup: int = 3) -> dict:
    """Batch 1: ``repeats`` calls cycling through ``images``; batch 32: ``max(3, repeats // 4)`` calls."""
    if not images:
        raise BenchmarkError("no images to time the model on")
    cycle = iter(range(10**9))
    for _ in range(warmup):
        predictor.predict([images[0]])
    single = _timed(lambda: predictor.predict([images[next(cycle) % len(images)]]), repeats)
    batch = (images * (BATCH // len(images) + 1))[:BATCH]
    predictor.predict(batch)
    batched = _timed(lambda: predictor.predict(batch), max(3, repeats // 4))
    per_image = [s / BATCH for s in batched]
    return {
        "batch_1": {
            "p50_ms": round(1000 * statistics.median(single), 3),
            "p95_ms": round(1000 * _p95(single), 3),
            "calls": len(single),
        },
        f"batch_{BATCH}": {
            "p50_ms_per_image": round(1000 * statistics.median(per_image), 3),
            "p95_ms_per_image": round(1000 * _p95(per_image), 3),
            "images_per_s": round(1 / statistics.median(per_image), 1),
            "calls": len(batched),
        },
        "warmup_calls": warmup,
    }


def measure_run(
    run: Run, images: list[Image.Image], *, threads: dict, repeats: int = 20, runtime: str | None = None
) -> dict:
    """Time the run's served model (``runtime``: see ``load_predictor``) and record the result in run.json
    (atomically) under ``latency``, with the runtime it really ran on."""
    if not can_predict(run):
        record = {"protocol": PROTOCOL, "not_measured": why_no_model(run)}
    else:
        predictor = load_predictor(run, runtime)
        record = {
            "protocol": PROTOCOL,
            "runtime": runtime_of(predictor),
            **measure_predictor(predictor, images, repeats=repeats),
            "threads": threads,
            "hardware": {key: environment()[key] for key in ("cpu", "cpu_count", "gpu")},
            "images": f"{len(images)} test images",
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    run.update(**{LATENCY_KEY: record})
    return record
