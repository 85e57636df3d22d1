"""Reading results: leaderboard, paired comparisons, ranks across datasets, ease of use, the HTML report, figures."""

from __future__ import annotations

import json
from pathlib import Path

DEFAULT_DATASET = Path("data/stampscenes")


def add_commands(commands) -> None:
    p = commands.add_parser(
        "export-mlflow",
        help="log every finished run into MLflow (params, history, metrics with CIs, artifacts); idempotent",
        description="One MLflow run per run folder, one MLflow experiment per dataset: the run's settings as params, "
        "each epoch's history as steps, the shared evaluator's test metrics with their 95%% CI bounds, valid macro "
        "AUC, per-label ROC-AUC, timings and latency, tags (kind, backbone, seed, preset, dataset fingerprint, "
        "machine) and run.json, metrics.json and predictions.csv as artifacts. Exporting again skips unchanged runs "
        "and replaces changed ones: nothing is duplicated. Then: mlflow ui --backend-store-uri URI.",
    )
    p.add_argument("--results", type=Path, default=Path("results"))
    p.add_argument(
        "--tracking-uri",
        default=None,
        help="where MLflow keeps them (default sqlite:///RESULTS/mlflow.db, MLflow's default backend kind; a server: "
        "http://HOST:5000)",
    )
    p.add_argument("--with-models", action="store_true", help="also each run's model file as an artifact")
    p.set_defaults(handler=cmd_export_mlflow)
    p = commands.add_parser(
        "report", help="one self-contained HTML report: EDA, leaderboard, per-class ROC/AUC, comparisons"
    )
    p.add_argument("dataset", type=Path)
    p.add_argument("--results", type=Path, default=Path("results"))
    p.add_argument("--out", type=Path, default=None, help="HTML file to write (default RESULTS/report-<dataset>.html)")
    p.set_defaults(handler=cmd_report)
    p = commands.add_parser(
        "compare",
        help="paired bootstrap comparison of two runs, or two models over their seeds, on the same test images",
        description="A minus B on the test split with a 95% CI. A and B are run folders (or run ids under "
        "--results), or model names as `leaderboard --group-by model` prints them (e.g. fastai·lite0·quick): a model "
        "with several seeds is compared over seeds and test images together, with P(A > B) over seed pairs, and the "
        "verdict says 'not distinguishable from seed and test-image noise' when the CI contains 0.",
    )
    p.add_argument("run_a", help="run folder, run id under --results, or model name")
    p.add_argument("run_b", help="run folder, run id under --results, or model name")
    p.add_argument("--results", type=Path, default=Path("results"), help="where run ids and model names are looked up")
    p.add_argument("--dataset", type=Path, default=None, help="only runs on this dataset (for model names)")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.add_argument("--per-label", action="store_true", help="also each label's ROC-AUC difference with its CI")
    p.set_defaults(handler=cmd_compare)
    p = commands.add_parser("leaderboard", help="one table of all runs on a dataset")
    p.add_argument("--dataset", type=Path, default=None, help="only runs on this dataset")
    p.add_argument("--results", type=Path, default=Path("results"))
    p.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table (what the docs quote)")
    p.add_argument(
        "--group-by",
        choices=["run", "model"],
        default="run",
        help="model: one row per model (kind, backbone, settings) over its seeds — mean ± sd and a CI over seeds and "
        "test images",
    )
    p.set_defaults(handler=cmd_leaderboard)
    p = commands.add_parser(
        "ranks",
        help="models ranked across datasets: average ranks, Friedman test, critical-difference diagram",
        description="Each model's macro AUC (mean over its seeds) on each dataset, ranked per dataset (1 = best) and "
        "averaged; the Friedman test and the Nemenyi critical difference (Demšar 2006) say which average ranks are "
        "distinguishable. Needs at least 3 datasets with the same models (e.g. from one grid).",
    )
    p.add_argument("--results", type=Path, default=Path("results"))
    p.add_argument("--datasets", type=Path, nargs="+", default=None, help="only these datasets (default: all)")
    p.add_argument("--html", type=Path, default=None, help="also write the CD diagram as a self-contained HTML file")
    p.set_defaults(handler=cmd_ranks)
    p = commands.add_parser(
        "ease",
        help="ease of use, measured: fastai, Keras, TM, Vertex AutoML, Vision API, Roboflow side by side",
        description="Lines of framework-specific code and trainer options (counted from the source), install "
        "footprint (from the installed distributions), import time (--measure), time to first result, training "
        "time, peak memory, model size and latency (from the runs on DATASET), and each family's declared manual "
        "steps, uploads, costs, losses and pitfalls with links (its ease.toml).",
    )
    p.add_argument("--dataset", type=Path, default=None, help="read run figures from runs on this dataset")
    p.add_argument("--results", type=Path, default=Path("results"))
    p.add_argument("--measure", action="store_true", help="time each framework's import (best of 3) first")
    p.add_argument("--markdown", action="store_true", help="the whole table and the pitfalls as Markdown")
    p.set_defaults(handler=cmd_ease)
    p = commands.add_parser(
        "figures",
        help="render docs/figures.md: the leaderboard, paired comparisons and grid summaries README quotes",
        description="The one file every figure in README comes from: the leaderboard of DATASET's runs in --results, "
        "each model against the linear probe and against each other (paired bootstrap on the test images), every "
        "grid summary under RESULTS/grids, and the machine and commit they were measured on. Written atomically; "
        "tests/test_docs.py fails when README quotes a figure it does not hold.",
    )
    p.add_argument("--dataset", type=Path, default=Path("data/stampscenes"))
    p.add_argument("--results", type=Path, default=Path("results"))
    p.add_argument("--out", type=Path, default=Path("docs/figures.md"), help="default docs/figures.md")
    p.set_defaults(handler=cmd_figures)


def cmd_report(args) -> None:
    from benchmarks.data.dataset import load_dataset
    from benchmarks.evaluation.report import write_report
    from benchmarks.report_sections import upper_sections

    dataset = load_dataset(args.dataset)
    sections, figures = upper_sections(args.results, dataset)
    print(f"report written: {write_report(dataset, args.results, args.out, sections, figures)}")


def cmd_compare(args) -> None:
    from benchmarks.evaluation.groups import compare_groups
    from benchmarks.evaluation.label_verdicts import compare_per_label

    a, b = _group_for(args.run_a, args), _group_for(args.run_b, args)
    result = compare_groups(a, b)
    if args.per_label:
        result["per_label"] = compare_per_label(a, b)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    seeds = result["n_seeds"]
    print(
        f"A = {result['a']} ({seeds[0]} seed{'s' * (seeds[0] > 1)})\nB = {result['b']} ({seeds[1]} "
        f"seed{'s' * (seeds[1] > 1)})\n({result['n_test_images']} test images, {result['resamples']} paired bootstrap "
        f"resamples{', seeds drawn with replacement' if max(seeds) > 1 else ''})"
    )
    for name, m in result["metrics"].items():
        if m["difference"] is None:
            print(f"  {name}: {m['verdict']}")
            continue
        ci = m["ci"]
        ci_text = f"[{ci[0]:+.4f}, {ci[1]:+.4f}]" if ci else "n/a"
        shown = f"{name} (mean over {m['sets']} corrupted test sets)" if "sets" in m else name
        line = f"  {shown}: A {m['a']:.4f}  B {m['b']:.4f}  A-B {m['difference']:+.4f}  95% CI {ci_text}"
        if "p_a_better" in m:
            p_ci = m["p_a_better_ci"]
            line += f"  P(A>B) {m['p_a_better']:.2f}" + (f" [{p_ci[0]:.2f}, {p_ci[1]:.2f}]" if p_ci else "")
        print(f"{line}  -> {m['verdict']}")
    for entry in result.get("per_label", []):
        if entry["difference"] is None:
            print(f"    {entry['label']:>16}: {entry['verdict']}")
            continue
        ci = entry["ci"]
        print(
            f"    {entry['label']:>16}: A {entry['a']:.3f}  B {entry['b']:.3f}  A-B {entry['difference']:+.3f}  "
            f"[{ci[0]:+.3f}, {ci[1]:+.3f}]  -> {entry['verdict']}"
        )
    if max(seeds) == 1:
        print("one seed each: the CI sees test-image noise only, not training noise (run more seeds: `grid`)")


def cmd_leaderboard(args) -> None:
    from benchmarks.data.dataset import load_dataset
    from benchmarks.evaluation.leaderboard import format_table, group_leaderboard, leaderboard

    dataset = load_dataset(args.dataset, require_train_positives=False) if args.dataset else None
    table = (group_leaderboard if args.group_by == "model" else leaderboard)(args.results, dataset)
    print(table.to_csv(index=False) if args.csv else format_table(table, markdown=args.markdown))


def cmd_ranks(args) -> None:
    from benchmarks.atomic import atomic_write_text
    from benchmarks.data.dataset import load_dataset
    from benchmarks.evaluation.ranks import average_ranks, cd_diagram, scores_by_dataset, verdict

    datasets = [load_dataset(d, require_train_positives=False) for d in args.datasets] if args.datasets else None
    scores = scores_by_dataset(args.results, datasets)
    result = average_ranks(scores)
    print(scores.round(3).to_string())
    print(f"\naverage ranks over {len(result['datasets'])} datasets (1 = best):")
    for name, rank in result["ranks"].items():
        print(f"  {rank:5.2f}  {name}")
    friedman = "n/a (2 models)" if result["friedman_p"] is None else f"{result['friedman_p']:.4f}"
    print(f"Friedman p = {friedman}; critical difference {result['critical_difference']:.2f} (alpha {result['alpha']})")
    print(verdict(result))
    if args.html:
        import plotly.io as pio

        atomic_write_text(args.html, pio.to_html(cd_diagram(result), include_plotlyjs=True))
        print(f"CD diagram written: {args.html}")


def cmd_ease(args) -> None:
    from benchmarks.data.dataset import load_dataset
    from benchmarks.models.ease import NUMERIC_ROWS, declared_facts, ease_markdown, ease_table, measure_imports

    if args.measure:
        print("timing imports in fresh interpreters (best of 3)…", flush=True)
        measure_imports(declared_facts(), args.results)
    dataset = load_dataset(args.dataset, require_train_positives=False) if args.dataset else None
    table = ease_table(args.results, dataset)
    if args.markdown:
        print(ease_markdown(table))
        return
    print(table.loc[NUMERIC_ROWS].to_string())
    print("\n(text facts, costs and pitfalls with links: --markdown, or the dashboard's Frameworks page)")


def cmd_figures(args) -> None:
    from benchmarks.atomic import atomic_write_text
    from benchmarks.data.dataset import load_dataset
    from benchmarks.runner.figures import render_figures

    dataset = load_dataset(args.dataset, require_train_positives=False)
    command = f"python -m benchmarks figures --dataset {args.dataset} --results {args.results}"
    atomic_write_text(args.out, render_figures(args.results, dataset, command))
    print(f"wrote {args.out}")


def _group_for(name: str, args):
    """A run folder (or a run id under --results, as the leaderboard prints it) is a group of one; anything else is
    a model name from `leaderboard --group-by model`."""
    from benchmarks.data.dataset import load_dataset
    from benchmarks.evaluation.groups import Group, find_group, group_runs
    from benchmarks.evaluation.leaderboard import runs_for
    from benchmarks.evaluation.results import load_run

    if Path(name).is_dir() or "/" in name or name.startswith("."):  # a path: a run folder (or one not found)
        run = load_run(name)
        return Group(run.run_id, [run])
    if (args.results / name / "run.json").is_file():
        run = load_run(args.results / name)
        return Group(run.run_id, [run])
    dataset = load_dataset(args.dataset, require_train_positives=False) if args.dataset else None
    runs = [run for run in runs_for(args.results, dataset) if run.status == "done"]
    return find_group(group_runs(runs), name)


def cmd_export_mlflow(args) -> None:
    from benchmarks.evaluation.tracking import default_tracking_uri, export_runs

    summary = export_runs(args.results, args.tracking_uri, with_models=args.with_models)
    for line in summary.skipped:
        print(f"skipped {line}")
    uri = args.tracking_uri or default_tracking_uri(args.results)
    print(
        f"MLflow ({uri}): {len(summary.exported)} exported, {len(summary.replaced)} replaced (changed since), "
        f"{len(summary.unchanged)} unchanged, {len(summary.skipped)} skipped; browse: mlflow ui --backend-store-uri "
        f"{uri}"
    )
