"""``robustness``: the served model of each run scored on the test split under common corruptions."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.data.corruptions import CORRUPTION_NAMES, DEFAULT_SEVERITIES, SEVERITIES

DESCRIPTION = f"""\
Score each RUN's served model (the one the API serves, through --runtime) on the test split under ImageNet-C-style
corruptions from albumentations: noise, blur, weather and digital, at severities 1-5. Every image is corrupted with a
seed of its own (corruption, severity, image), and each corrupted test set is made once per dataset and cached under
IMGBENCH_CACHE (~/.cache/imgbench/corruptions/; 35-75 MB per set for 500 images at 224 px), so every run sees exactly
the same pixels. Scores are kept in RUN/robustness.npz set by set: an interrupted command, or one asked for more
corruptions, scores only what is missing.

Per run: macro AUC (the evaluator's) on the clean test split and on each corruption x severity, the mean under
corruption and relative robustness (corrupted / clean), each with a 95% CI over the evaluator's resampled test
images. Against a baseline (--baseline, default the linear probe among RUNs, as ImageNet-C used AlexNet): corruption
error CE = sum over severities of (1 - AUC) / the baseline's, mCE (its mean over corruptions) and relative mCE (the
drop from clean / the baseline's drop); below 1 is more robust than the baseline. Runs are compared pairwise on the
mean under corruption with the same resampled images (Benjamini-Hochberg across the pairs). A run without a model
(ingested predictions, a calibrated copy) is listed with the reason it has no row.

Corruptions: {", ".join(CORRUPTION_NAMES)}.
"""


def add_commands(commands) -> None:
    p = commands.add_parser(
        "robustness",
        help="score runs' served models under common corruptions (noise, blur, weather, digital), with CIs",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("runs", type=Path, nargs="*", metavar="RUN", help="run folders (results/RUN_ID)")
    p.add_argument(
        "--models-on",
        type=Path,
        default=None,
        metavar="DATASET",
        help="instead of RUNs (or beside them): the newest finished run of every model trained on DATASET in "
        "--results (what `make robustness` scores: the demo's models)",
    )
    p.add_argument("--results", type=Path, default=Path("results"), help="where --models-on looks (default results)")
    p.add_argument("--corruptions", nargs="+", default=list(CORRUPTION_NAMES), metavar="NAME", help="default: all 15")
    p.add_argument(
        "--severities",
        nargs="+",
        type=int,
        default=list(DEFAULT_SEVERITIES),
        metavar="S",
        help=f"{SEVERITIES[0]} (light) to {SEVERITIES[-1]} (heavy); default {' '.join(map(str, DEFAULT_SEVERITIES))}",
    )
    p.add_argument(
        "--runtime",
        choices=["native", "openvino", "fastest"],
        default=None,
        help="serve through this runtime, as the API would (default: the one a run's stored scores were made "
        "with, else SERVING_RUNTIME, else native); fastest: OpenVINO where the run's model exports to it within "
        "parity, else native",
    )
    p.add_argument("--baseline", type=Path, default=None, help="the run CE is relative to (default: the linear probe)")
    p.add_argument("--dataset", type=Path, default=None, help="the runs' dataset, where it moved since training")
    p.add_argument("--force", action="store_true", help="score every set again, even those robustness.npz holds")
    p.add_argument("--json", action="store_true", help="print the tables as JSON")
    p.add_argument("--html", type=Path, default=None, help="also write a heatmap of macro AUC per set and run")
    p.add_argument(
        "--markdown", type=Path, default=None, help="also write the results page (docs/robustness-results.md)"
    )
    p.set_defaults(handler=cmd_robustness)


def cmd_robustness(args) -> None:
    from benchmarks.data.corruptions import check_choice
    from benchmarks.data.dataset import load_dataset
    from benchmarks.errors import BenchmarkError, RunError
    from benchmarks.evaluation.groups import newest_per_model
    from benchmarks.evaluation.results import load_run

    check_choice(args.corruptions, args.severities)
    if not args.runs and args.models_on is None:
        raise BenchmarkError("name the runs to score (RUN ...), or --models-on DATASET for every model trained on it")
    runs = [load_run(path) for path in args.runs]
    if args.models_on is not None:
        runs += newest_per_model(args.results, load_dataset(args.models_on, require_train_positives=False))
        runs = list({run.path.resolve(): run for run in runs}.values())
    baseline = load_run(args.baseline) if args.baseline else None
    if baseline is not None and all(r.path.resolve() != baseline.path.resolve() for r in runs):
        runs.append(baseline)
    dataset = load_dataset(args.dataset, require_train_positives=False) if args.dataset else None
    from benchmarks.robustness.scoring import score_run
    from benchmarks.serving.predictors import can_predict

    for run in runs:
        if not can_predict(run):
            continue  # listed below with the reason
        try:
            score_run(run, args.corruptions, args.severities, args.runtime, args.force, dataset)
        except RunError as error:
            print(f"skipped: {error}")
    _print_tables(runs, baseline, args)


def _print_tables(runs, baseline, args) -> None:
    import pandas as pd

    from benchmarks.robustness.table import collect, pairwise, set_matrix, summary_table

    collected = collect(runs, baseline)
    summary, pairs = summary_table(collected), pairwise(collected["rows"])
    sets, names, values = set_matrix(collected)
    if args.json:
        matrix = {s: dict(zip(names, map(_finite, row))) for s, row in zip(sets, values)}
        print(
            json.dumps({"summary": summary, "pairs": pairs, "sets": matrix, "missing": collected["missing"]}, indent=2)
        )
    else:
        if summary:
            print(pd.DataFrame(summary).to_string(index=False))
            print("\nmacro AUC per set (rows: corruption-severity):")
            print(pd.DataFrame(values, index=sets, columns=names).round(3).to_string())
        if collected["baseline"]:
            print(f"\nCE, mCE: errors (1 - macro AUC) relative to {collected['baseline']}; below 1 = more robust")
        else:
            print("\nno linear probe scored among these runs: no corruption error (pass --baseline RUN)")
        for pair in pairs:
            print(
                f"- {pair['a']} minus {pair['b']}, mean under {pair['sets']} corrupted sets: "
                f"{pair['difference']:+.3f} [{pair['ci'][0]:+.3f}, {pair['ci'][1]:+.3f}], "
                f"BH-adjusted p {pair['p_adjusted']:.3f}: {pair['verdict']}"
            )
        for entry in collected["missing"]:
            print(f"no row: {entry['run']}: {entry['why']}")
    if args.markdown and summary:
        from benchmarks.atomic import atomic_write_text
        from benchmarks.robustness.page import render_robustness_page

        shown = " ".join(_relative(path) for path in args.runs)
        if args.models_on is not None:
            shown += f" --models-on {_relative(args.models_on)} --results {_relative(args.results)}"
        command = f"python -m benchmarks robustness {shown.strip()} --markdown {args.markdown}"
        dataset_name = collected["rows"][0]["run_obj"].info["dataset"].get("name", "?")
        atomic_write_text(args.markdown, render_robustness_page(collected, dataset_name, command))
        print(f"page written: {args.markdown}")
    if args.html and summary:
        from benchmarks.atomic import atomic_write
        from benchmarks.evaluation.charts import auc_heatmap

        title = "Test macro ROC-AUC under corruption (rows: corruption-severity)"
        figure = auc_heatmap(pd.DataFrame(values, index=sets, columns=names), title=title)
        atomic_write(args.html, lambda tmp: figure.write_html(tmp, include_plotlyjs=True), suffix=".html")
        print(f"heatmap written: {args.html}")


def _relative(path: Path) -> str:
    """A run folder as the command line named it, without this machine's absolute prefix where it is under cwd."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _finite(value: float) -> float | None:
    return float(value) if value == value else None
