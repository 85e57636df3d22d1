"""``python -m tools.speed RESULTS``: the speed-ups of the evaluator and the frozen networks, measured side by side in
one process on this machine, written to ``docs/speed.md`` (``--out``) with the CPU named.

- the bootstrap of every finished run in RESULTS: one scikit-learn call per resample (the evaluator before) against
  the matrix form it uses now, with the largest difference between their samples;
- frozen features (EfficientNet-Lite, the probe's and LP-FT's) by PyTorch, by the OpenVINO export the suite uses and
  by ONNX Runtime (the same network through ``torch.onnx.export``: the other candidate runtime), and the TM
  replica's base by TensorFlow (eager, as before; traced) and by its OpenVINO export: images/s on the network alone,
  batch 32, the same dataset images for each, and the largest feature difference.

Measure with nothing else running: on 2 cores a second job halves every figure.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np

import benchmarks.models.torch_first  # noqa: F401, I001  (PyTorch before TensorFlow)
from benchmarks.atomic import atomic_write
from benchmarks.data.dataset import load_dataset
from benchmarks.data.images import open_rgb
from benchmarks.errors import BenchmarkError
from benchmarks.evaluation import evaluate
from benchmarks.evaluation.groups import newest_per_model
from benchmarks.evaluation.machine import environment
from benchmarks.evaluation.resampling import draw_counts, per_label_samples, per_label_samples_by_resample
from benchmarks.evaluation.results import list_runs
from benchmarks.models.backbones import get_backbone
from benchmarks.models.features import FeatureNetwork

BATCH = 32


def seconds(work, repeat: int = 1) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        work()
    return (time.perf_counter() - start) / repeat


def bootstrap_rows(runs: list) -> list[str]:
    rows = []
    resamples, seed = evaluate.BOOTSTRAP_RESAMPLES, evaluate.BOOTSTRAP_SEED
    for run in runs:
        dataset = evaluate.dataset_of(run)
        targets, scores = evaluate.aligned_scores(run, dataset, "test")
        before = seconds(lambda: per_label_samples_by_resample(targets, scores, resamples, seed))
        slow = per_label_samples_by_resample(targets, scores, resamples, seed)
        after = seconds(lambda: per_label_samples(targets, scores, draw_counts(len(targets), resamples, seed)), 5)
        fast = per_label_samples(targets, scores, draw_counts(len(targets), resamples, seed))
        difference = max(float(np.nanmax(np.abs(fast[k] - slow[k]))) for k in fast)
        rows.append(
            f"| {run.kind} | {targets.shape[0]} × {targets.shape[1]} | {before:.2f} | {after:.3f} | "
            f"{before / after:.0f}× | {difference:.1e} |"
        )
    return rows


def throughput(network, batches: list[np.ndarray]) -> float:
    network(batches[0])  # warm-up: first-call allocation and tracing are not throughput
    return sum(len(b) for b in batches) / seconds(lambda: [network(b) for b in batches])


def feature_rows(images: list, backbone_name: str) -> list[str]:
    backbone = get_backbone(backbone_name)
    network = FeatureNetwork(backbone, backbone.input_size)
    batches = [network.network_input(images[i : i + BATCH]) for i in range(0, len(images), BATCH)]
    native = throughput(network.native, batches)
    compiled = throughput(network.network, batches)
    difference = max(float(np.abs(network.native(b) - network.network(b)).max()) for b in batches)
    ort = onnxruntime_network(network.model, batches[0])
    ort_speed = throughput(ort, batches)
    ort_difference = max(float(np.abs(network.native(b) - ort(b)).max()) for b in batches)
    return [
        f"| {backbone_name} features at {backbone.input_size} px | PyTorch | {native:.0f} | |",
        f"| | {network.runtime} | {compiled:.0f} | {difference:.1e} |",
        f"| | ONNX Runtime {ort.version} | {ort_speed:.0f} | {ort_difference:.1e} |",
    ]


def onnxruntime_network(model, example: np.ndarray):
    """The same PyTorch network exported by ``torch.onnx.export`` (dynamo) and run by ONNX Runtime's CPU provider
    on every core: the other runtime the frozen features could use, measured beside OpenVINO."""
    import tempfile

    import onnxruntime
    import torch

    path = Path(tempfile.mkdtemp(prefix="speed-onnx-")) / "features.onnx"
    batch = torch.export.Dim("batch", max=4096)
    module = model.to(memory_format=torch.contiguous_format)
    torch.onnx.export(module, (torch.from_numpy(example),), str(path), input_names=["x"], dynamo=True,
                      dynamic_shapes={"x": {0: batch}}, external_data=False, verbose=False)  # fmt: skip
    model.to(memory_format=torch.channels_last)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(batch_input: np.ndarray) -> np.ndarray:
        return session.run(None, {"x": batch_input})[0]

    run.version = onnxruntime.__version__
    return run


def tm_base_rows(images: list) -> list[str]:
    import keras

    from benchmarks.exports.tm_keras_model import DEFAULT_SIZE, build_base
    from benchmarks.serving.tf_runtime import traced_forward
    from tm_replica.replica import SHIPPED_BASE, base_network, load_base_weights, tm_inputs

    weights, _ = load_base_weights(None)
    network, runtime = base_network(weights)
    base = build_base(weights, DEFAULT_SIZE, SHIPPED_BASE)
    pooled = keras.Model(base.input, keras.layers.GlobalAveragePooling2D()(base.output))
    traced = traced_forward(pooled, DEFAULT_SIZE)
    batches = [tm_inputs(images[i : i + BATCH]) for i in range(0, len(images), BATCH)]
    eager = throughput(lambda x: np.asarray(pooled(x, training=False)), batches)
    graph = throughput(lambda x: np.asarray(traced(x)), batches)
    compiled = throughput(network, batches)
    difference = max(float(np.abs(np.asarray(traced(b)) - network(b)).max()) for b in batches)
    return [
        f"| TM base (MobileNetV2 0.35) at {DEFAULT_SIZE} px | TensorFlow eager (before) | {eager:.0f} | |",
        f"| | TensorFlow traced | {graph:.0f} | |",
        f"| | {runtime} | {compiled:.0f} | {difference:.1e} |",
    ]


def report(command: str, runs: list, images: list, backbones: list[str]) -> str:
    machine = environment()
    cpu = machine.get("cpu", "unknown CPU")
    features = ", ".join(machine.get("cpu_features", []) or []) or "not recorded"
    lines = [
        "# Speed: the evaluator and the frozen networks",
        "",
        f"Generated by `{command}` on {datetime.now():%Y-%m-%d}: **{cpu}**, "
        f"{machine.get('cpu_count', '?')} cores ({features}). Figures from one process, one machine, nothing else "
        "running; on another CPU they move (docs/results.md says which machines are compared).",
        "",
        "## Bootstrap of one run (1,000 resamples of the test images, per-label ROC-AUC and AP)",
        "",
        "| run | test images × labels | scikit-learn per resample, s | matrix form, s | speed-up | max difference |",
        "|---|---|---|---|---|---|",
        *bootstrap_rows(runs),
        "",
        f"## Frozen networks ({len(images)} dataset images, batch {BATCH}, images/s on the network alone)",
        "",
        "| network | runtime | images/s | max feature difference |",
        "|---|---|---|---|",
        *[row for name in backbones for row in feature_rows(images, name)],
        *tm_base_rows(images),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.speed", description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="results folder of a demo run (its runs' bootstraps are timed)")
    parser.add_argument(
        "--dataset", type=Path, default=None, help="time only the newest run of each model on this dataset (the demo's)"
    )
    parser.add_argument("--images", type=int, default=256, help="dataset images for the network figures (256)")
    parser.add_argument("--backbones", nargs="+", default=["lite0"], help="backbones whose features are timed")
    parser.add_argument("--out", type=Path, default=Path("docs/speed.md"), help="where the page goes")
    args = parser.parse_args(argv)
    try:
        runs = [run for run in list_runs(args.results) if run.status == "done"]
        if args.dataset is not None:
            runs = newest_per_model(args.results, load_dataset(args.dataset, require_train_positives=False))
        if not runs:
            raise BenchmarkError(f"{args.results}: no finished runs; run `make demo` first")
        paths = evaluate.dataset_of(runs[0]).image_paths()[: args.images]
        command = f"python -m tools.speed {args.results}" + (f" --dataset {args.dataset}" if args.dataset else "")
        page = report(command, runs, [open_rgb(p) for p in paths], args.backbones)
    except BenchmarkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    atomic_write(args.out, lambda tmp: Path(tmp).write_text(page, encoding="utf-8"))
    print(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
