"""Benchmark grids: datasets × models × seeds from a TOML spec, locally or on Ray."""

from __future__ import annotations

import sys
from pathlib import Path

DEFAULT_DATASET = Path("data/stampscenes")


def add_commands(commands) -> None:
    p = commands.add_parser(
        "grid",
        help="run a benchmark grid (datasets × models × backbones × seeds) locally or on a Ray cluster",
        description="Every cell of the TOML spec becomes an ordinary run folder in --results. Finished cells are "
        "skipped, so a stopped grid resumes; a failed cell is recorded with its error (RESULTS/grids/NAME/cells.json, "
        "logs beside it) and the others go on. At the end the per-model table and the paired comparisons are printed "
        "and written to RESULTS/grids/NAME/summary.md. Example: benchmarks/grids/reference.toml.",
    )
    p.add_argument("spec", type=Path, help="grid spec (TOML)")
    p.add_argument("--results", type=Path, default=Path("results"))
    p.add_argument(
        "--executor",
        choices=["local", "ray"],
        default="local",
        help="local: child processes here; ray: one Ray task per cell with the cell's cpus/gpus (default local)",
    )
    p.add_argument(
        "--address", default=None, help="Ray cluster address (ray start --head prints it); default: a local Ray"
    )
    p.add_argument(
        "--max-parallel",
        type=int,
        default=None,
        help="cells at once (default: 1 locally — 2 cores fit one training — and as Ray's resources allow on Ray)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the cells and the estimated time, run nothing")
    p.set_defaults(handler=cmd_grid)
    p = commands.add_parser(
        "learning-curve",
        help="test macro AUC against training images per label, per model, from runs on nested subsets of DATASET",
        description="Reads the finished runs in --results made on DATASET and on its subsets (benchmarks subset, or a "
        "grid's subsets = {...}; benchmarks/grids/data-efficiency.toml): one row per model and size, pooled over "
        "draws and seeds (their range in brackets), and each model against the linear probe on the same subset, "
        "draw by draw (paired bootstrap on the same test images): 'ahead of the probe in every draw' only where "
        "every draw's 95%% CI is above 0. The last line: from how many images per label each model stays ahead.",
    )
    p.add_argument("dataset", type=Path, help="the full dataset the subsets were cut from")
    p.add_argument("--results", type=Path, default=Path("results"))
    p.add_argument("--html", type=Path, default=None, help="also write the curves as an interactive chart")
    p.add_argument("--markdown", type=Path, default=None, help="also write the page (and its chart as PNG beside it)")
    p.set_defaults(handler=cmd_learning_curve)


def cmd_grid(args) -> int:
    from benchmarks.runner.grid import run_grid
    from benchmarks.runner.spec import read_spec
    from benchmarks.runner.summary import grid_summary, write_summary

    spec = read_spec(args.spec)
    ledger = run_grid(
        spec,
        args.results,
        executor=args.executor,
        address=args.address,
        max_parallel=args.max_parallel,
        dry_run=args.dry_run,
    )
    if args.dry_run:
        return 0
    print("\n" + grid_summary(spec, ledger, args.results))
    print(f"summary written: {write_summary(spec, ledger, args.results)}")
    failed = [e for e in ledger["cells"].values() if e.get("status") == "failed"]
    if failed:
        print(
            f"error: {len(failed)} cell(s) failed (listed above); fix and run the grid again: finished cells are kept",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_learning_curve(args) -> None:
    import pandas as pd

    from benchmarks.data.dataset import load_dataset
    from benchmarks.errors import BenchmarkError
    from benchmarks.runner.learning_curves import ahead_line, learning_points, learning_summary

    dataset = load_dataset(args.dataset)
    curves = learning_points(args.results, dataset.fingerprint, len(dataset.rows("train")))
    if not curves:
        raise BenchmarkError(f"{args.results}: no finished run on {args.dataset} or its subsets")
    summary = learning_summary(curves)
    print(pd.DataFrame(summary["table"]).to_string(index=False))
    if summary["comparisons"]:
        print("\nagainst the linear probe on the same subsets (mean difference over draws):")
        print(pd.DataFrame(summary["comparisons"]).round(3).to_string(index=False))
        for model, size in summary["first_ahead"].items():
            print(f"- {ahead_line(model, size)}")
    if args.html:
        from benchmarks.atomic import atomic_write
        from benchmarks.evaluation.charts import learning_curves_chart

        figure = learning_curves_chart(summary["chart"])
        atomic_write(args.html, lambda tmp: figure.write_html(tmp, include_plotlyjs=True), suffix=".html")
        print(f"chart written: {args.html}")
    if args.markdown:
        from benchmarks.runner.learning_page import write_learning_page

        command = (
            f"python -m benchmarks learning-curve {args.dataset} --results {args.results} --markdown {args.markdown}"
        )
        write_learning_page(curves, dataset.name, args.markdown, command)
        print(f"page written: {args.markdown}")
