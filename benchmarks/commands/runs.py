"""Run commands: the reference baselines, the shared evaluator on a run, the one latency protocol."""

from __future__ import annotations

from pathlib import Path

from benchmarks.cli_arguments import add_dataset_argument, dataset_argument
from benchmarks.errors import BenchmarkError

DEFAULT_DATASET = Path("data/stampscenes")


def add_commands(commands) -> None:
    p = commands.add_parser("baseline", help="reference runs: label-frequency prior or linear probe on frozen features")
    p.add_argument("kind", choices=["prior", "linear-probe"])
    add_dataset_argument(p)
    p.add_argument("--results", type=Path, default=Path("results"), help="results folder (default results/)")
    p.add_argument("--backbone", default="lite0", help="linear probe backbone: lite0, lite1 or lite2")
    p.add_argument("--img-size", type=int, default=None, help="linear probe input size (default: the backbone's)")
    p.add_argument(
        "--c",
        type=float,
        default=None,
        help="linear probe: this C (inverse L2 strength) for every label, instead of the best on valid of a grid "
        "from 1e-4 to 1 (benchmarks tune searches it)",
    )
    p.add_argument(
        "--skip-existing", action="store_true", help="do nothing if a finished run of this kind exists for this dataset"
    )
    p.set_defaults(handler=cmd_baseline)
    p = commands.add_parser("evaluate", help="score a run with the shared evaluator (writes RUN/metrics.json)")
    p.add_argument("run", type=Path)
    p.add_argument("--dataset", type=Path, default=None, help="dataset folder, if it moved since the run")
    p.set_defaults(handler=cmd_evaluate)
    p = commands.add_parser(
        "calibrate",
        help="post-hoc calibration fitted on valid only, as a new run beside RUN (never replacing it)",
        description="Per label, a monotone map from RUN's scores to calibrated ones, fitted on the valid split: "
        "platt (logistic regression on the logit) or temperature (the logit divided by one fitted number). Ranking "
        "metrics stay; ECE, Brier and the tuned thresholds move. The new run is scored by the shared evaluator and "
        "named apart on the leaderboard (calibration=...); it serves no model of its own.",
    )
    p.add_argument("run", type=Path)
    p.add_argument("--method", choices=["platt", "temperature"], default="temperature")
    p.set_defaults(handler=cmd_calibrate)
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


def cmd_baseline(args) -> None:
    from benchmarks.data.dataset import load_dataset
    from benchmarks.evaluation.evaluate import evaluate_run
    from benchmarks.evaluation.results import newest_done_run, report_run
    from benchmarks.models.baselines import PROBE_C_GRID, run_linear_probe, run_prior

    dataset = load_dataset(dataset_argument(args))
    kind = args.kind.replace("-", "_")
    if args.c is not None and not args.c > 0:
        raise BenchmarkError(f"--c {args.c}: must be a positive number, e.g. 0.1")
    c_grid = PROBE_C_GRID if args.c is None else (args.c,)
    if args.skip_existing:
        same = {}
        if kind == "linear_probe":  # a new C grid fits again
            same = {"backbone": args.backbone, "params": {"img_size": _probe_size(args), "c_grid": list(c_grid)}}
        if (run := newest_done_run(args.results, kind, dataset.fingerprint, **same)) is not None:
            report_run(run)
            print(f"reusing {run.path} ({kind} on this dataset already done)")
            return
    run = (
        run_prior(dataset, args.results)
        if kind == "prior"
        else run_linear_probe(dataset, args.results, backbone_name=args.backbone, img_size=args.img_size, c_grid=c_grid)
    )
    metrics = evaluate_run(run.path, dataset)
    summary = metrics["overall"]
    print(
        f"{run.path}: macro AUC {_fmt(summary['macro_roc_auc'], summary['macro_roc_auc_ci'])}, mAP "
        f"{_fmt(summary['map'], summary['map_ci'])}"
    )


def cmd_calibrate(args) -> None:
    from benchmarks.evaluation.posthoc import calibrate_run
    from benchmarks.evaluation.results import read_metrics

    run = calibrate_run(args.run, args.method)
    overall = read_metrics(run)["overall"]
    print(
        f"{run.path}: {args.method} on valid; ECE {_fmt(overall['macro_ece'], overall['macro_ece_ci'])}, Brier "
        f"{_fmt(overall['brier'], overall['brier_ci'])}, macro AUC {overall['macro_roc_auc']:.3f} (unchanged ranking)"
    )


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


def cmd_measure(args) -> None:
    import random

    from tqdm import tqdm

    from benchmarks.data.dataset import load_dataset
    from benchmarks.data.images import open_rgb
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


def _probe_size(args) -> int:
    from benchmarks.models.backbones import get_backbone

    return args.img_size or get_backbone(args.backbone).input_size


def _fmt(value, ci) -> str:
    from benchmarks.evaluation.metrics import with_interval

    return "n/a" if value is None else with_interval(value, ci or None)
