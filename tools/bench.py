"""``python -m tools.bench``: speed and quality figures for the notes, measured in one run on one machine.

Every registered family's benchmark steps run as subprocesses, one at a time: trainers' throughput probes
(images/s against a plain loop), then each family's timed runs (``--preset quick`` for the trainers, both heads
of the TM replica) with wall time and peak memory; then every run's test metrics from the shared evaluator,
paired comparisons against the linear probe, and the prediction API's latency and throughput.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from benchmarks.atomic import atomic_write_json
from benchmarks.data.dataset import load_dataset
from benchmarks.evaluation.compare import compare_runs
from benchmarks.evaluation.leaderboard import leaderboard
from benchmarks.evaluation.results import Run, finished_runs_on, newest_done_run, newest_per
from benchmarks.models.registry import BAR, baseline_kind, families, is_baseline
from tools.api_load import measure_api


def run_child(args: list[str]) -> tuple[str, float, float]:
    """Run a Python module; return its stdout, wall seconds and that child's own peak resident memory in MB."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen([sys.executable, "-m", *args], stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(child.pid, 0)  # this child's rusage, not the max over all children
        child.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if child.returncode != 0:
        raise SystemExit(f"error: `python -m {' '.join(args)}` failed:\n{stderr[-2000:]}")
    return stdout, seconds, usage.ru_maxrss / 1024


def newest_per_variant(results: Path, fingerprint: str) -> dict[str, Run]:
    """The newest finished run of each kind (and head, where a family has several) on the dataset."""
    contenders = [run for run in finished_runs_on(results, fingerprint) if not is_baseline(run.kind)]
    return newest_per(contenders, lambda run: run.kind + (f"_{run.params['head']}" if run.params.get("head") else ""))


def main(argv: list[str] | None = None) -> None:
    known = families()
    parser = argparse.ArgumentParser(
        prog="python -m tools.bench", description=__doc__.splitlines()[0].split(": ", 1)[1]
    )
    parser.add_argument("--dataset", type=Path, default=Path("data/stampscenes"))
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument(
        "--families", nargs="+", default=list(known), choices=list(known), help="families to run (default: all)"
    )
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-training", action="store_true", help="only report runs already in --results")
    parser.add_argument("--skip-api", action="store_true", help="do not measure the prediction API")
    args = parser.parse_args(argv)
    dataset = load_dataset(args.dataset)
    report: dict = {
        "dataset": dataset.name,
        "fingerprint": dataset.fingerprint,
        "date": datetime.now().isoformat(timespec="seconds"),
        "families": {},
    }

    for kind in args.families:
        family, entry = known[kind], {}
        if not args.skip_throughput and family.throughput:
            entry["throughput"] = {}
            for variant, flags in family.throughput_probes.items():
                out, _, _ = run_child([family.throughput, "--dataset", str(args.dataset), *flags])
                entry["throughput"][variant] = json.loads(out[out.rindex("{") :])  # the probe's last output is its JSON
                print(f"{kind} throughput ({variant}): {entry['throughput'][variant]}", flush=True)
        if not args.skip_training:
            for title, argv in family.bench_commands(args.dataset, args.results):
                _, seconds, peak_mb = run_child(argv)
                entry.setdefault("runs", {})[title] = {"wall_s": round(seconds, 1), "peak_rss_mb": round(peak_mb)}
                print(f"{title}: {entry['runs'][title]}", flush=True)
        if entry:
            report["families"][kind] = entry

    # Every run's served model re-timed in this one process, in shuffled order: latency ratios are comparable.
    run_child(
        ["benchmarks", "measure", str(args.dataset), "--results", str(args.results), "--seed", str(time.time_ns())]
    )
    table = leaderboard(args.results, dataset)
    report["leaderboard"] = json.loads(table.to_json(orient="records"))
    bar = baseline_kind(BAR)
    probe = newest_done_run(args.results, bar, dataset.fingerprint) if bar else None
    report["comparisons"] = {}
    for name, run in newest_per_variant(args.results, dataset.fingerprint).items():
        if probe:
            result = compare_runs(run.path, probe.path)
            report["comparisons"][f"{name} vs {bar}"] = {
                m: {k: v[k] for k in ("difference", "ci", "verdict")} for m, v in result["metrics"].items()
            }
    if not args.skip_api:
        report["api"] = {
            runtime: measure_api(args.results, dataset.image_paths("test")[0], runtime=runtime)
            for runtime in ("native", "openvino")
        }
        print(f"API (one 224x224 image per request): {json.dumps(report['api'])}", flush=True)
    out = args.results / f"benchmark-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    atomic_write_json(out, report)
    print(
        table[
            ["run", "kind", "macro_auc", "macro_auc_ci", "map", "map_ci", "train_s", "latency_ms", "images_per_s"]
        ].to_string(index=False)
    )
    print(json.dumps(report["comparisons"], indent=1))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
