"""``python -m benchmarks``: build, import, inspect and score datasets and runs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks.cli_arguments import add_dataset_argument, dataset_argument
from benchmarks.errors import run_cli

DEFAULT_DATASET = Path("data/stampscenes")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(lambda: args.handler(args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Multi-label image-classification benchmark: datasets, EDA, baselines, one evaluator, leaderboard.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("build-default", help="compose the StampScenes dataset from Tux Paint stamps (offline)")
    p.add_argument("out", type=Path, help="folder to create")
    p.add_argument(
        "--size", type=int, default=3000, help="number of images (2/3 train, 1/6 valid, 1/6 test; default 3000)"
    )
    p.add_argument("--img-size", type=int, default=224, help="image side in pixels (default 224)")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same dataset")
    p.add_argument("--stamps", type=Path, default=None, help="stamp folder (default /usr/share/tuxpaint/stamps)")
    p.set_defaults(handler=cmd_build_default)

    p = commands.add_parser("import", help="import a dataset from another layout into the dataset format")
    p.add_argument(
        "format",
        choices=["folder", "fastai-csv", "voc", "coco"],
        help="folder: SRC/<label>/*.jpg; fastai-csv: CSV fname,labels[,is_valid]; voc: VOC root; coco: instances JSON",
    )
    p.add_argument("src", type=Path, help="source folder, CSV or JSON")
    p.add_argument("dest", type=Path, help="new dataset folder")
    p.add_argument(
        "--images", type=Path, default=None, help="image folder for fastai-csv and coco (default: beside the file)"
    )
    p.add_argument("--name", default=None, help="dataset name (default: the destination folder name)")
    p.add_argument("--seed", type=int, default=0, help="seed for the stratified split when the source has none")
    p.set_defaults(handler=cmd_import)

    p = commands.add_parser("eda", help="EDA and quality report (DATASET/eda/); remedies write a cleaned copy")
    p.add_argument("dataset", type=Path)
    p.add_argument("--drop-corrupt", action="store_true", help="remedy: leave out unreadable or zero-byte images")
    p.add_argument("--dedupe", action="store_true", help="remedy: keep one image of each exact/near-duplicate group")
    p.add_argument(
        "--resplit", action="store_true", help="remedy: re-split with stratification, duplicates kept together"
    )
    p.add_argument(
        "--out", type=Path, default=None, help="where remedies write the cleaned dataset (default DATASET-clean)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=cmd_eda)

    p = commands.add_parser("baseline", help="reference runs: label-frequency prior or linear probe on frozen features")
    p.add_argument("kind", choices=["prior", "linear-probe"])
    add_dataset_argument(p)
    p.add_argument("--results", type=Path, default=Path("results"), help="results folder (default results/)")
    p.add_argument("--backbone", default="lite0", help="linear probe backbone: lite0, lite1 or lite2")
    p.add_argument("--img-size", type=int, default=None, help="linear probe input size (default: the backbone's)")
    p.add_argument(
        "--skip-existing", action="store_true", help="do nothing if a finished run of this kind exists for this dataset"
    )
    p.set_defaults(handler=cmd_baseline)

    p = commands.add_parser("evaluate", help="score a run with the shared evaluator (writes RUN/metrics.json)")
    p.add_argument("run", type=Path)
    p.add_argument("--dataset", type=Path, default=None, help="dataset folder, if it moved since the run")
    p.set_defaults(handler=cmd_evaluate)

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
        description="A minus B on the test split with a 95% CI. A and B are run folders, or model names as "
        "`leaderboard --group-by model` prints them (e.g. fastai·lite0·quick): a model with several seeds is "
        "compared over seeds and test images together, with P(A > B) over seed pairs, and the verdict says 'not "
        "distinguishable from seed and test-image noise' when the CI contains 0.",
    )
    p.add_argument("run_a", help="run folder or model name")
    p.add_argument("run_b", help="run folder or model name")
    p.add_argument("--results", type=Path, default=Path("results"), help="where model names are looked up")
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
        "measure",
        help="time every run's served model by one protocol (batch 1 and 32, same threads) into run.json",
        description="Latency of every run that has a model, measured the same way: the served predictor, from a "
        "decoded image to label scores, warm-up then timed calls at batch 1 and batch 32 on test images, with "
        "PyTorch and TensorFlow set to the same thread count. Runs are timed in a shuffled order in this one "
        "process, so their ratios are comparable; runs without a local model are recorded with the reason.",
    )
    p.add_argument("dataset", type=Path, help="the dataset whose test images are timed (and whose runs are measured)")
    p.add_argument("--results", type=Path, default=Path("results"))
    p.add_argument("--runs", nargs="+", default=None, help="only these run folders (default: every run on DATASET)")
    p.add_argument("--repeats", type=int, default=20, help="timed batch-1 calls per run (default 20)")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads for every framework (default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the shuffled run order (default 0)")
    p.add_argument("--missing", action="store_true", help="only runs that have no latency record yet")
    p.add_argument(
        "--runtime",
        choices=("native", "openvino"),
        default=None,
        help="serve fastai and Keras networks natively or through their OpenVINO export (default: $SERVING_RUNTIME, "
        "else native); the record names the runtime each run really used",
    )
    p.set_defaults(handler=cmd_measure)

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
    return parser


def cmd_build_default(args) -> None:
    from benchmarks.data.stampscenes import build_stampscenes

    dataset = build_stampscenes(
        args.out, size=args.size, img_size=args.img_size, seed=args.seed, stamps_dir=args.stamps
    )
    print(
        f"built {dataset.name} in {dataset.root}: {len(dataset.items)} images, {len(dataset.labels)} labels, "
        f"fingerprint {dataset.fingerprint}"
    )
    print(dataset.counts().to_string())


def cmd_import(args) -> None:
    from benchmarks.data import importers

    readers = {
        "folder": lambda: importers.read_folder(args.src),
        "fastai-csv": lambda: importers.read_fastai_csv(args.src, args.images),
        "voc": lambda: importers.read_voc(args.src),
        "coco": lambda: importers.read_coco(args.src, args.images),
    }
    records = readers[args.format]()
    dataset = importers.materialize(
        records, args.dest, name=args.name or args.dest.name, source=f"{args.format}: {args.src}", seed=args.seed
    )
    print(f"imported {len(dataset.items)} images with {len(dataset.labels)} labels into {dataset.root}")
    print(dataset.counts().to_string())


def cmd_eda(args) -> None:
    from benchmarks.data.cleaning import clean_dataset
    from benchmarks.data.dataset import load_dataset
    from benchmarks.data.eda import scan_images
    from benchmarks.data.eda_report import run_eda

    dataset = load_dataset(args.dataset, require_train_positives=False)
    report = run_eda(dataset)
    print(f"EDA of {dataset.name}: {dataset.root / 'eda' / 'report.json'} and report.html")
    for check in report["checks"]:
        print(
            f"  [{check['verdict']:>4}] {check['check']}: {check['finding']}"
            + (f" -> {check['remedy']}" if check["remedy"] else "")
        )
    if args.drop_corrupt or args.dedupe or args.resplit:
        out = args.out or dataset.root.with_name(dataset.root.name + "-clean")
        cleaned = clean_dataset(
            dataset,
            scan_images(dataset, processes=True),
            out,
            drop_corrupt=args.drop_corrupt,
            dedupe=args.dedupe,
            resplit=args.resplit,
            seed=args.seed,
        )
        print(
            f"cleaned dataset written to {cleaned.root} ({len(cleaned.items)} images): "
            f"{'; '.join(cleaned.info['derived_from']['remedies'])}"
        )


def cmd_baseline(args) -> None:
    from benchmarks.data.dataset import load_dataset
    from benchmarks.evaluation.evaluate import evaluate_run
    from benchmarks.evaluation.results import newest_done_run, report_run
    from benchmarks.models.baselines import PROBE_C_GRID, run_linear_probe, run_prior

    dataset = load_dataset(dataset_argument(args))
    kind = args.kind.replace("-", "_")
    if args.skip_existing:
        same = {}
        if kind == "linear_probe":  # a new C grid fits again
            same = {"backbone": args.backbone, "params": {"img_size": _probe_size(args), "c_grid": list(PROBE_C_GRID)}}
        if (run := newest_done_run(args.results, kind, dataset.fingerprint, **same)) is not None:
            report_run(run)
            print(f"reusing {run.path} ({kind} on this dataset already done)")
            return
    run = (
        run_prior(dataset, args.results)
        if kind == "prior"
        else run_linear_probe(dataset, args.results, backbone_name=args.backbone, img_size=args.img_size)
    )
    metrics = evaluate_run(run.path, dataset)
    summary = metrics["overall"]
    print(
        f"{run.path}: macro AUC {_fmt(summary['macro_roc_auc'], summary['macro_roc_auc_ci'])}, mAP "
        f"{_fmt(summary['map'], summary['map_ci'])}"
    )


def _probe_size(args) -> int:
    from benchmarks.models.backbones import get_backbone

    return args.img_size or get_backbone(args.backbone).input_size


def cmd_evaluate(args) -> None:
    from benchmarks.data.dataset import load_dataset
    from benchmarks.evaluation.evaluate import evaluate_run

    dataset = load_dataset(args.dataset, require_train_positives=False) if args.dataset else None
    metrics = evaluate_run(args.run, dataset)
    summary = metrics["overall"]
    print(
        f"{args.run}: macro AUC {_fmt(summary['macro_roc_auc'], summary['macro_roc_auc_ci'])}, mAP "
        f"{_fmt(summary['map'], summary['map_ci'])}, "
        f"micro F1 {summary['micro_f1']:.3f}, macro F1 {summary['macro_f1']:.3f} (thresholds tuned on valid) -> "
        f"{Path(args.run) / 'metrics.json'}"
    )


def cmd_report(args) -> None:
    from benchmarks.data.dataset import load_dataset
    from benchmarks.evaluation.report import write_report
    from benchmarks.models.ease import ease_html, ease_table

    dataset = load_dataset(args.dataset)
    sections = [ease_html(ease_table(args.results, dataset))]
    print(f"report written: {write_report(dataset, args.results, args.out, sections)}")


def cmd_compare(args) -> None:
    from benchmarks.evaluation.groups import compare_groups, compare_per_label

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
        line = f"  {name}: A {m['a']:.4f}  B {m['b']:.4f}  A-B {m['difference']:+.4f}  95% CI {ci_text}"
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


def _group_for(name: str, args):
    """A run folder is a group of one; anything else is a model name from `leaderboard --group-by model`."""
    from benchmarks.data.dataset import load_dataset
    from benchmarks.evaluation.groups import Group, find_group, group_runs
    from benchmarks.evaluation.leaderboard import runs_for
    from benchmarks.evaluation.results import load_run

    if Path(name).is_dir() or "/" in name or name.startswith("."):  # a path: a run folder (or one not found)
        run = load_run(name)
        return Group(run.run_id, [run])
    dataset = load_dataset(args.dataset, require_train_positives=False) if args.dataset else None
    runs = [run for run in runs_for(args.results, dataset) if run.status == "done"]
    return find_group(group_runs(runs), name)


def cmd_leaderboard(args) -> None:
    from benchmarks.data.dataset import load_dataset
    from benchmarks.evaluation.leaderboard import format_table, group_leaderboard, leaderboard

    dataset = load_dataset(args.dataset, require_train_positives=False) if args.dataset else None
    table = (group_leaderboard if args.group_by == "model" else leaderboard)(args.results, dataset)
    print(table.to_csv(index=False) if args.csv else format_table(table, markdown=args.markdown))


def cmd_measure(args) -> None:
    import random

    from tqdm import tqdm

    from benchmarks.data.dataset import load_dataset
    from benchmarks.data.images import open_rgb
    from benchmarks.errors import BenchmarkError
    from benchmarks.evaluation.latency import BATCH, LATENCY_KEY
    from benchmarks.evaluation.results import finished_runs_on, load_run
    from benchmarks.serving.measure import MEASURED_IMAGES, measure_run, pin_threads

    if args.repeats < 1:
        raise BenchmarkError(f"--repeats {args.repeats}: time at least one call")
    dataset = load_dataset(args.dataset, require_train_positives=False)
    runs = [load_run(r) for r in args.runs] if args.runs else finished_runs_on(args.results, dataset.fingerprint)
    if not runs:
        raise BenchmarkError(f"{args.results}: no finished runs on {dataset.name}; train or evaluate one first")
    if args.missing:
        runs = [run for run in runs if LATENCY_KEY not in run.info]
        if not runs:
            print("every run already has its latency measured")
            return
    images = [open_rgb(path) for path in dataset.image_paths("test")[:MEASURED_IMAGES]]
    threads = pin_threads(args.threads)
    random.Random(args.seed).shuffle(runs)  # no run always goes first (cold caches) or last
    for run in tqdm(runs, desc="measuring latency", unit="run"):
        try:
            record = measure_run(run, images, threads=threads, repeats=args.repeats, runtime=args.runtime)
        except BenchmarkError as exc:  # one damaged run does not stop the others
            tqdm.write(f"{run.run_id}: not measured ({exc})")
            continue
        if "batch_1" in record:
            tqdm.write(
                f"{run.run_id}: {record['batch_1']['p50_ms']:.1f} ms per image at batch 1 (p50), "
                f"{record[f'batch_{BATCH}']['images_per_s']:.0f} images/s at batch {BATCH} ({record['runtime']})"
            )
        else:
            tqdm.write(f"{run.run_id}: — ({record['not_measured']})")
    print(f"threads: {threads}")


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


def cmd_figures(args) -> None:
    from benchmarks.atomic import atomic_write_text
    from benchmarks.data.dataset import load_dataset
    from benchmarks.runner.figures import render_figures

    dataset = load_dataset(args.dataset, require_train_positives=False)
    command = f"python -m benchmarks figures --dataset {args.dataset} --results {args.results}"
    atomic_write_text(args.out, render_figures(args.results, dataset, command))
    print(f"wrote {args.out}")


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


def _fmt(value, ci) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")
