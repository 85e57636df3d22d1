"""One run's life, the same for every trainer: opened (created, or reloaded to resume), closed (predictions on
valid and test, the model, the shared evaluator), with the CLI frame around it.

Trainers keep only their framework's code between ``open_run`` and ``close_run``, so reading the two trainers side
by side shows the frameworks, not two copies of the bookkeeping.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks import errors
from benchmarks.data.dataset import Dataset, load_dataset
from benchmarks.errors import BenchmarkError, DatasetError, interruptible
from benchmarks.evaluation.evaluate import dataset_of, evaluate_run
from benchmarks.evaluation.results import (
    EVAL_SPLITS,
    Run,
    create_run,
    load_run,
    model_size_bytes,
    newest_done_run,
    report_run,
)
from benchmarks.models.backbones import Backbone, get_backbone

from .options import CommonConfig, small_data_note
from .served_check import check_served_is_scored


@dataclass(frozen=True)
class ResumePoint:
    """Where training picks up: the phase ("frozen" or "unfrozen") and the first of its epochs still to run."""

    phase: str
    epoch: int

    @classmethod
    def after_progress(cls, run: Run, freeze_epochs: int) -> ResumePoint | None:
        """The epoch after the last finished one that run.json records; None when no epoch finished."""
        progress = run.info.get("progress")
        if not progress:
            return None
        point = cls(progress["phase"], progress["epoch"] + 1)
        return cls("unfrozen", 0) if point.phase == "frozen" and point.epoch >= freeze_epochs else point


START = ResumePoint("frozen", 0)


@dataclass
class Opening:
    """What a trainer starts from: the dataset, the settings, the backbone and, for ``--resume``, the run and the
    point to resume at (``resume`` None: train from the start, in ``run`` if it exists)."""

    kind: str
    dataset: Dataset
    config: CommonConfig
    backbone: Backbone
    run: Run | None = None
    resume: ResumePoint | None = None

    def create_run(self, results_dir: Path, **params) -> Run:
        """A new run folder, its params the config plus what the trainer adds (``lr_used``, ...)."""
        return create_run(
            results_dir,
            kind=self.kind,
            dataset=self.dataset,
            backbone=self.backbone.name,
            params={**self.config.to_dict(), **params},
        )

    def train_seconds(self, seconds: float) -> float:
        """This session's training time, plus what the run spent before it was interrupted."""
        earlier = self.run.timings.get("train_s", 0.0) if self.resume is not None else 0.0
        return round(seconds + earlier, 2)


def open_run(kind: str, config: CommonConfig, dataset_dir: Path | None, resume: Path | None) -> Opening:
    """A new run's dataset and settings, or an interrupted run reloaded with the settings it was started with.

    A run interrupted before its first epoch ended has nothing to resume from: it starts again in its own folder."""
    if resume:
        run = load_run(resume)
        if run.kind != kind:
            raise BenchmarkError(f"{resume}: is a {run.kind} run, not a {kind} run")
        config = type(config)(**{k: v for k, v in run.params.items() if k in type(config).__dataclass_fields__})
        dataset = dataset_of(run)
        point = ResumePoint.after_progress(run, config.freeze_epochs)
        if point is None:
            print("no finished epoch to resume from (the run stopped before its first one ended): starting it again")
        else:
            print(f"resuming {point.phase} phase at epoch {point.epoch}")
    else:
        run, point, dataset = None, None, load_dataset(dataset_dir)
        note = small_data_note(config, len(dataset.rows("train")))
        if note:
            print(note)
    check_trainable(dataset)
    return Opening(kind, dataset, config, get_backbone(config.backbone), run, point)


def close_run(
    run: Run,
    dataset: Dataset,
    scores: np.ndarray,
    artifact: Path,
    *,
    train_s: float,
    predict_s: float,
    served_elsewhere: str | None = None,
    **model,
) -> None:
    """Valid and test scores (``EVAL_SPLITS`` order) into predictions.csv, checked against the served model, and
    the run marked done with its timings and the served model (``artifact``, plus what the trainer says of it).
    ``served_elsewhere``: why this process cannot load the served model (recorded instead of the check)."""
    rows = dataset.rows(EVAL_SPLITS)
    run.write_predictions(list(rows["image"]), list(rows["split"]), scores)
    if served_elsewhere:
        run.update(served_check={"skipped": served_elsewhere})
    else:
        check_served_is_scored(run, dataset, scores)
    run.finish(
        timings={"train_s": round(train_s, 2), "predict_s": round(predict_s, 2)},
        model={"path": artifact.name, "size_bytes": model_size_bytes(artifact), **model},
    )


def score_run(run: Run, dataset: Dataset) -> Run:
    """The shared evaluator tunes thresholds on valid and scores test; the headline is printed."""
    summary = evaluate_run(run.path, dataset)["overall"]
    print(f"{run.path}: test macro AUC {summary['macro_roc_auc']:.3f}, mAP {summary['map']:.3f} (shared evaluator)")
    return run


def check_trainable(dataset: Dataset) -> None:
    """Refuse labels that cannot be learnt: no positive (or no negative) training image."""
    train = dataset.targets("train")
    if len(train) == 0:
        raise DatasetError(f"{dataset.root}: the train split is empty")
    for label, count in zip(dataset.labels, train.sum(axis=0)):
        if count == 0:
            raise DatasetError(f"{dataset.root}: label '{label}' has no training images; add some or remove the label")
        if count == len(train):
            raise DatasetError(f"{dataset.root}: label '{label}' is on every training image; nothing to learn")


def run_cli(body: Callable[[], object]) -> int:
    """The shared CLI frame, with a Ctrl-C message that says how to continue the run."""
    return errors.run_cli(
        body,
        "\ninterrupted: the run is marked interrupted with its last finished epoch saved; continue with --resume RUN",
    )


def trainer_main(
    argv: list[str] | None, parser: argparse.ArgumentParser, make_config: Callable, train: Callable, kind: str
) -> int:
    """``python -m <trainer>.train``: flags -> config (preset under explicit flags) -> train or resume."""
    args = parser.parse_args(argv)
    interruptible()  # a grid's or the tuner's stop is a SIGINT, whoever started the process

    def body():
        if not args.resume and not args.dataset:
            raise BenchmarkError("--dataset DIR is required (or --resume RUN)")
        options = {
            k: v for k, v in vars(args).items() if k not in ("dataset", "results", "preset", "resume", "skip_existing")
        }
        config = make_config(args.preset, **options)
        if args.skip_existing and not args.resume:
            fingerprint = load_dataset(args.dataset).fingerprint
            run = newest_done_run(args.results, kind, fingerprint, params=config.to_dict())
            if run is not None:
                report_run(run)
                print(f"reusing {run.path} ({kind} with these settings on this dataset already done)")
                return
        train(args.dataset, args.results, config, resume=args.resume)

    return run_cli(body)


WITHIN_EPOCH_EVERY_S = 2.0  # how often a trainer notes its batch position in run.json


def note_within_epoch(run, last: float | None, phase: str, epoch: int, batch: int, batches: int) -> float | None:
    """Where training is inside the epoch (``within_epoch`` in run.json: phase, epoch, batch of batches) on an
    epoch's first batch and then every ``WITHIN_EPOCH_EVERY_S``, for the dashboard's progress bar and ETA. Kept
    apart from ``progress``, which names the last *finished* epoch that a resume starts after. Returns the time
    of the last note."""
    now = time.monotonic()
    epoch_end = bool(batches) and batch >= batches
    if last is not None and now - last < WITHIN_EPOCH_EVERY_S and not epoch_end:
        return last
    run.update(within_epoch={"phase": phase, "epoch": epoch, "batch": batch, "batches": batches})
    return now


def initial_head(run, dataset: Dataset, config: CommonConfig):
    """LP-FT's first step, shared by both trainers: ``(weight, bias)`` of the linear probe fitted on cached frozen
    features of the training split at the run's image size (C chosen on valid, as the probe baseline does), and
    where the head came from recorded in run.json. ``None`` for ``--head-init random``."""
    if config.head_init != "probe":
        run.update(head_init={"from": "random (the framework's own initialisation)"})
        return None
    from benchmarks.models.baselines import probe_head

    print("LP-FT: fitting the head on frozen features first (cached after the first run)…", flush=True)
    fit, seconds = probe_head(dataset, config.backbone, config.img_size, config.seed)
    run.update(
        head_init={
            "from": "linear probe on frozen pooled features of the train split (LP-FT)",
            "c": fit.c,
            "probe_valid_macro_auc": None if fit.valid_macro_auc is None else round(fit.valid_macro_auc, 4),
            "seconds": round(seconds, 1),
        }
    )
    return fit.linear_head()
