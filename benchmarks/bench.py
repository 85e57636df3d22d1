"""``python -m benchmarks.bench``: speed and quality figures for the notes, measured in one run on one machine.

Trainers are run as subprocesses (``benchmarks`` never imports a trainer): their throughput probes, then
``--preset quick`` on the dataset with wall time and peak memory, the Teachable Machine replica (both heads),
then every run's test metrics from the shared evaluator, side by side, with paired comparisons against the
linear probe, and the prediction API's latency and throughput.
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

from .api_load import measure_api
from .atomic import atomic_write_json
from .compare import compare_runs
from .dataset import load_dataset
from .leaderboard import leaderboard
from .results import newest_done_run

# trainer kind -> (package, throughput probe variants: extra flags for each)
TRAINERS = {
    "fastai": ("fastai_model", {"num_workers=0": [], "num_workers=1": ["--num-workers", "1"]}),
    "keras": ("keras_model", {"tf.data": []}),
}


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=Path("data/stampscenes"))
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--trainers", nargs="+", default=list(TRAINERS), choices=list(TRAINERS))
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-training", action="store_true", help="only report runs already in --results")
    parser.add_argument("--skip-api", action="store_true", help="do not measure the prediction API")
    args = parser.parse_args(argv)
    dataset = load_dataset(args.dataset)
    report: dict = {"dataset": dataset.name, "fingerprint": dataset.fingerprint, "date": datetime.now().isoformat(timespec="seconds"), "trainers": {}}

    if newest_done_run(args.results, "linear_probe", dataset.fingerprint) is None:
        run_child(["benchmarks", "baseline", "linear-probe", str(args.dataset), "--results", str(args.results)])
    for kind in args.trainers:
        module, variants = TRAINERS[kind]
        entry = report["trainers"].setdefault(kind, {})
        if not args.skip_throughput:
            entry["throughput"] = {}
            for variant, flags in variants.items():
                out, _, _ = run_child([f"{module}.throughput", "--dataset", str(args.dataset), *flags])
                entry["throughput"][variant] = json.loads(out[out.rindex("{"):])  # the probe's last output is its JSON
                print(f"{kind} throughput ({variant}): {entry['throughput'][variant]}", flush=True)
        if not args.skip_training:
            _, seconds, peak_mb = run_child([f"{module}.train", "--dataset", str(args.dataset), "--results", str(args.results), "--preset", "quick"])
            entry["quick"] = {"wall_s": round(seconds, 1), "peak_rss_mb": round(peak_mb)}
            print(f"{kind} --preset quick: {entry['quick']}", flush=True)

    if not args.skip_training:  # Teachable Machine's own recipe, and the same with a sigmoid head
        report["tm_replica"] = {}
        for head in ("softmax", "sigmoid"):
            _, seconds, peak_mb = run_child(["cloud_baselines", "tm-replica", str(args.dataset), "--results", str(args.results), "--head", head])
            report["tm_replica"][head] = {"wall_s": round(seconds, 1), "peak_rss_mb": round(peak_mb)}
            print(f"TM replica ({head} head): {report['tm_replica'][head]}", flush=True)

    table = leaderboard(args.results, dataset)
    report["leaderboard"] = json.loads(table.to_json(orient="records"))
    probe = newest_done_run(args.results, "linear_probe", dataset.fingerprint)
    report["comparisons"] = {}
    contenders = {kind: newest_done_run(args.results, kind, dataset.fingerprint) for kind in args.trainers}
    contenders |= {f"tm_replica_{head}": newest_done_run(args.results, "teachable_machine_replica", dataset.fingerprint, params={"head": head}) for head in ("softmax", "sigmoid")}
    for name, run in contenders.items():
        if run and probe:
            result = compare_runs(run.path, probe.path)
            report["comparisons"][f"{name} vs linear_probe"] = {m: {k: v[k] for k in ("difference", "ci", "verdict")} for m, v in result["metrics"].items()}
    if not args.skip_api:
        report["api"] = measure_api(args.results, dataset.image_paths("test")[0])
        print(f"API (one 224x224 image per request): {json.dumps(report['api'])}", flush=True)
    out = args.results / f"benchmark-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    atomic_write_json(out, report)
    print(table[["run", "kind", "macro_auc", "macro_auc_ci", "map", "map_ci", "train_s", "ms_per_image"]].to_string(index=False))
    print(json.dumps(report["comparisons"], indent=1))
    print(f"written: {out}")


if __name__ == "__main__":
    main()
