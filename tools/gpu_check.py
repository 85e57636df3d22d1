"""``python -m tools.gpu_check``: the trainers' GPU checks, run on a GPU machine and written up here.

``run`` (on the GPU machine, through ``scripts/gpu-check.sh``): the card and software named, fastai's training
throughput against its plain PyTorch loop (with the variants that locate the gap, and PyTorch's profile), and
``--preset quick`` runs of fastai and of Keras (seed 0 twice: is a GPU run reproducible?), each timed as a whole; the
run folders come back without their weights (``runs.tar.gz``), with ``gpu.json``. Keras runs on the backend asked
for, through Keras' backend-neutral PyDataset: the GPU machine has PyTorch and no TensorFlow.

``page`` (here): unpacks those runs into a results folder, scores them with the shared evaluator (the same code that
scores every run, on this machine's pinned stack), and writes ``docs/gpu.md`` beside the same preset's runs on this
machine's CPU on the same dataset, each figure with the machine it came from.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tarfile
import time
from datetime import datetime
from pathlib import Path

from benchmarks.data.dataset import load_dataset
from benchmarks.errors import BenchmarkError, run_cli
from benchmarks.evaluation.machine import environment

# what stays behind: the weights (tens of MB per run) and what the page's re-scoring writes again here
WEIGHTS = ("export.pkl", "model_state.pt", "model.keras", "checkpoints", "metrics.json", "bootstrap.npz")
TRAINERS = {"fastai": "fastai_model.train", "keras": "keras_model.train"}


def card_facts() -> dict:
    """The GPU, its driver and the software that ran on it: named beside every figure on the page."""
    import torch

    host = environment()
    facts = {
        "date": datetime.now().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "cpu": host["cpu"],
        "cpu_features": host["cpu_features"],
        "cpu_count": os.cpu_count(),
        "gpus": torch.cuda.device_count(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "cuda": torch.version.cuda,
        "packages": {},
    }
    for name in ("torch", "torchvision", "timm", "fastai", "keras", "numpy", "scikit-learn", "pandas"):
        try:
            from importlib.metadata import version

            facts["packages"][name] = version(name)
        except Exception:  # noqa: BLE001, S112  (a package that is not there is simply not named)
            continue
    try:
        query = ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"]
        facts["nvidia_smi"] = subprocess.run(query, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        facts["nvidia_smi"] = None
    return facts


def step(argv: list[str], log: Path, timeout_s: float) -> dict:
    """One child process (``python -m ...``), its wall time and exit status; its output appended to ``log``. A
    failed or stuck step is recorded and the next one runs: one lease, every check that can run."""
    start = time.perf_counter()
    with log.open("a") as out:
        out.write(f"\n$ python -m {' '.join(argv)}\n")
        out.flush()
        try:
            done = subprocess.run(
                [sys.executable, "-m", *argv], stdout=subprocess.PIPE, stderr=out, text=True, timeout=timeout_s
            )
            stdout, status = done.stdout, done.returncode
        except subprocess.TimeoutExpired as exc:
            stdout, status = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else exc.stdout or "", 124
        out.write(stdout)
    wall = round(time.perf_counter() - start, 1)
    print(f"{'ok' if status == 0 else f'FAILED ({status})'} in {wall} s: python -m {' '.join(argv)}", flush=True)
    return {"argv": argv, "wall_s": wall, "status": status, "stdout": stdout}


def run_entry(entry: str) -> tuple[str, str, str]:
    """``[TRAINER:]PRESET:SEED`` (the trainer fastai unless named) into its three parts."""
    parts = entry.split(":")
    trainer, named = (parts[0], parts[1:]) if len(parts) == 3 else ("fastai", parts)
    preset, seed = named if len(named) == 2 else ("", "")
    if trainer not in TRAINERS or not preset or not seed.isdigit():
        raise BenchmarkError(f"--runs {entry!r}: give [fastai:|keras:]PRESET:SEED, e.g. quick:0 or keras:quick:1")
    return trainer, preset, seed


def run_checks(
    dataset: Path,
    out: Path,
    runs: list[str],
    batch_sizes: list[int],
    timeout_s: float,
    keras_backend: str = "torch",
    profile: bool = False,
    keras_batch_sizes: tuple[int, ...] = (),
) -> dict:
    entries = [run_entry(entry) for entry in runs]  # a mistyped entry is refused before an hour of work
    out.mkdir(parents=True, exist_ok=True)
    log, results = out / "log.txt", Path("/tmp/gpu-check-results")
    report = {"card": card_facts(), "dataset": str(dataset), "throughput": [], "keras_throughput": [], "runs": []}
    print(json.dumps(report["card"]), flush=True)
    load_dataset(dataset)  # a damaged dataset is one line here, before the first step
    for bs in batch_sizes:
        warmup, batches = 3, 20  # timed within epochs (the probe skips epoch boundaries): any dataset size will do
        flags = ["--img-size", "224", "--bs", str(bs), "--batches", str(batches), "--warmup", str(warmup)]
        if profile:
            flags += ["--variants", "--profile", str(out / f"profile-bs{bs}.txt")]
        probe = step(["fastai_model.throughput", "--dataset", str(dataset), *flags], log, timeout_s)
        if probe["status"] == 0:
            report["throughput"].append(json.loads(probe["stdout"][probe["stdout"].rindex("{") :]))
    for bs in keras_batch_sizes:  # the trainer's fit against a plain fit, both through the PyDataset
        flags = ["--img-size", "224", "--bs", str(bs), "--backend", keras_backend, "--loader", "pydataset"]
        probe = step(["keras_model.throughput", "--dataset", str(dataset), *flags], log, timeout_s)
        if probe["status"] == 0:
            report["keras_throughput"].append(json.loads(probe["stdout"][probe["stdout"].rindex("{") :]))
    for trainer, preset, seed in entries:
        train = [TRAINERS[trainer], "--dataset", str(dataset), "--preset", preset, "--seed", seed]
        if trainer == "keras":
            train += ["--backend", keras_backend, "--loader", "pydataset"]
        done = step([*train, "--results", str(results)], log, timeout_s)
        run_lines = [line for line in done["stdout"].splitlines() if line.startswith("run: ")]
        run = run_lines[0].removeprefix("run: ").strip() if run_lines else None
        named = {"trainer": f"keras ({keras_backend})"} if trainer == "keras" else {}
        report["runs"].append(
            {
                **named,
                "preset": preset,
                "seed": int(seed),
                "wall_s": done["wall_s"],
                "status": done["status"],
                "run": run,
            }
        )
    with tarfile.open(out / "runs.tar.gz", "w:gz") as tar:
        for entry in report["runs"]:
            if entry["run"] and Path(entry["run"]).is_dir():
                folder = Path(entry["run"])
                tar.add(folder, arcname=folder.name, filter=lambda info: None if weights(info.name) else info)
    (out / "gpu.json").write_text(json.dumps(report, indent=1))
    return report


def weights(member: str) -> bool:
    return any(part in WEIGHTS for part in Path(member).parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.gpu_check", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="on the GPU machine: measure, and pack what comes back into OUT")
    run.add_argument("--dataset", type=Path, required=True)
    run.add_argument("--out", type=Path, required=True)
    run.add_argument(
        "--runs",
        nargs="*",
        default=["quick:0", "quick:0", "quick:1"],
        help="trainer runs as [fastai:|keras:]PRESET:SEED (default quick:0 quick:0 quick:1, fastai: seed 0 twice asks "
        "if a GPU run repeats)",
    )
    run.add_argument(
        "--keras-backend",
        default="torch",
        choices=["torch", "jax", "tensorflow"],
        help="Keras runs' backend (default torch: the GPU machine has PyTorch), input through Keras' PyDataset",
    )
    run.add_argument(
        "--keras-batch-sizes",
        type=int,
        nargs="*",
        default=[],
        help="Keras throughput probes' batch sizes (its trainer against a plain fit; none by default)",
    )
    run.add_argument(
        "--profile",
        action="store_true",
        help="the throughput probes also time fastai without augmentation and the plain loop with fp16's loss "
        "scaler, and write PyTorch's profile of the learner (profile-bsN.txt)",
    )
    run.add_argument("--batch-sizes", type=int, nargs="*", default=[32], help="throughput probes' batch sizes")
    run.add_argument(
        "--step-timeout", type=float, default=150, help="seconds a step may take before it is stopped (default 150)"
    )
    page = commands.add_parser("page", help="here: score the runs that came back and write the page")
    page.add_argument(
        "evidence", type=Path, nargs="+", help="folders `run` wrote (gpu.json, runs.tar.gz), one per machine"
    )
    page.add_argument("--results", type=Path, default=Path("results/gpu"), help="where their runs are unpacked")
    page.add_argument("--out", type=Path, default=Path("docs/gpu.md"))
    args = parser.parse_args(argv)
    if args.command == "run":
        return run_cli(
            lambda: run_checks(
                args.dataset,
                args.out,
                args.runs,
                args.batch_sizes,
                args.step_timeout,
                args.keras_backend,
                args.profile,
                tuple(args.keras_batch_sizes),
            )
        )
    from tools.gpu_page import write_page

    return run_cli(lambda: write_page(args.evidence, args.results, args.out))


if __name__ == "__main__":
    sys.exit(main())
