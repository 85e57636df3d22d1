"""``python -m tm_replica --dataset DATASET``: train Teachable Machine's network and recipe locally into a run."""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.cli_arguments import add_dataset_argument, dataset_argument
from benchmarks.data.dataset import load_dataset
from benchmarks.errors import BenchmarkError, run_cli
from benchmarks.evaluation.results import newest_done_run, report_run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tm_replica",
        description="TM's own network and recipe (frozen MobileNetV2-0.35 + Dense head, Adam, 50 epochs) trained "
        "locally on what tm-export would upload, scored by the shared evaluator.",
    )
    add_dataset_argument(parser)
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument(
        "--tm-export",
        type=Path,
        default=None,
        help="take the frozen base from this TM Keras/TF.js export (default: the shipped base)",
    )
    parser.add_argument(
        "--head",
        choices=["softmax", "sigmoid"],
        default="softmax",
        help="softmax = TM; sigmoid = same head size, one output per label",
    )
    parser.add_argument("--epochs", type=int, default=50, help="TM's default 50")
    parser.add_argument("--bs", type=int, default=16, help="TM's default 16")
    parser.add_argument("--lr", type=float, default=0.001, help="TM's default 0.001 (Adam)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--skip-existing",
        action="store_true",
        help="do nothing if a finished replica with these settings exists for this dataset",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> None:
        from benchmarks.exports.tm_keras_model import UPLOAD_SPLITS

        from .replica import KIND, train_replica

        dataset = load_dataset(dataset_argument(args))
        settings = {"head": args.head, "epochs": args.epochs, "bs": args.bs, "lr": args.lr, "seed": args.seed}
        same = {**settings, "trained_on_splits": UPLOAD_SPLITS}  # replicas that also trained on valid are not reused
        if args.skip_existing and (run := newest_done_run(args.results, KIND, dataset.fingerprint, params=same)):
            report_run(run)
            print(f"reusing {run.path} (TM replica with these settings on this dataset already done)")
            return
        if args.epochs < 1 or args.bs < 1 or not 0 < args.lr < 1:
            raise BenchmarkError("--epochs and --bs must be at least 1 and --lr in (0, 1)")
        train_replica(dataset, args.results, tm_export=args.tm_export, **settings)

    return run_cli(body)


if __name__ == "__main__":
    raise SystemExit(main())
