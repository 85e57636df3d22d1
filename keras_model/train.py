"""``python -m keras_model.train``: fine-tune the ported ImageNet EfficientNet-Lite with Keras 3 on a dataset in our
format.

The story: parse config -> load dataset -> tf.data pipelines -> ported body + sigmoid head -> phase 1
(body frozen) -> phase 2 (body unfrozen, much lower LR) -> sigmoid scores for valid and test -> results
format -> the shared evaluator tunes thresholds and scores the run.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.atomic import atomic_write
from benchmarks.data.dataset import load_dataset
from benchmarks.errors import BenchmarkError
from benchmarks.evaluation.evaluate import dataset_of, evaluate_run
from benchmarks.evaluation.metrics import rankable
from benchmarks.evaluation.results import Run, Stopwatch, create_run, load_run, model_size_bytes, recording
from benchmarks.models.backbones import get_backbone
from benchmarks.models.keep_best import KeepBest, keep_best_applies, start_label
from benchmarks.models.training import (
    add_common_arguments,
    check_trainable,
    initial_head,
    note_within_epoch,
    trainer_main,
)

from .backbone import keras
from .config import PRESETS, TrainConfig, head_lr, make_config
from .data import evaluation_data, training_data
from .model import build_classifier, compile_phase, precision_policy, set_body_trainable
from .serving import save_serving_artifact

KIND = "keras"
VALID_MACRO_AUC = "val_macro_auc"  # keep-best's scikit-learn figure, put into each epoch's logs
CHECKPOINT = Path("checkpoints") / "last.keras"
BEST_WEIGHTS = Path("checkpoints") / "best.weights.h5"
KEPT_WEIGHTS = Path("checkpoints") / "kept.weights.h5"  # keep-best (valid macro AUC)


class RunRecorder(keras.callbacks.Callback):
    """After each epoch: history row into run.json and the whole model (with optimizer state) saved
    atomically, so Ctrl-C loses at most one epoch. (``ModelCheckpoint`` writes in place: a kill mid-write
    would leave a broken file.)"""

    def __init__(self, run: Run, phase: str):
        super().__init__()
        self.target_run, self.phase = run, phase

    def on_epoch_begin(self, epoch, logs=None):
        self.started, self.epoch, self.last_note = time.perf_counter(), epoch, None

    def on_train_batch_end(self, batch, logs=None):
        steps = self.params.get("steps") or 0
        self.last_note = note_within_epoch(self.target_run, self.last_note, self.phase, self.epoch, batch + 1, steps)

    def on_epoch_end(self, epoch, logs=None):
        row = {"phase": self.phase, "epoch": epoch, "seconds": round(time.perf_counter() - self.started, 2)}
        row.update({name: round(float(value), 5) for name, value in (logs or {}).items()})
        atomic_write(self.target_run.path / CHECKPOINT, lambda tmp: self.model.save(tmp), suffix=".keras")
        self.target_run.update(
            history=self.target_run.info.get("history", []) + [row], progress={"phase": self.phase, "epoch": epoch}
        )


def distribution_strategy():
    """MirroredStrategy over several GPUs, else the default (one device)."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()


class KeepBestCallback(keras.callbacks.Callback):
    """Keep-best in Keras: the starting weights kept in memory; after each epoch the valid images are scored and
    offered to the shared rule, whose "best so far" weights are saved (``KEPT_WEIGHTS``); ``restore`` puts back
    the kept weights, or the start's."""

    def __init__(self, model, run: Run, config: TrainConfig, valid_images, valid_targets: np.ndarray):
        super().__init__()
        self.run, self.valid_images, self.valid_targets = run, valid_images, valid_targets
        self.rule = KeepBest(valid_targets, self.score(model), config.keep_best_confidence, start_label(config))
        self.start_weights = model.get_weights()
        self.phase = "frozen"
        (run.path / KEPT_WEIGHTS).unlink(missing_ok=True)

    def score(self, model) -> np.ndarray:
        return np.asarray(model.predict(self.valid_images, verbose=0), dtype=np.float32)

    def on_epoch_end(self, epoch, logs=None):
        if self.rule.offer(self.valid_targets, self.score(self.model), f"{self.phase} epoch {epoch}"):
            (self.run.path / KEPT_WEIGHTS).parent.mkdir(exist_ok=True)  # it runs before the run recorder makes it
            self.model.save_weights(self.run.path / KEPT_WEIGHTS)
        if logs is not None:  # Keras hands every callback the same dict: early stopping and the history read it
            logs[VALID_MACRO_AUC] = self.rule.epochs[-1]["valid_macro_auc"]

    def restore(self) -> None:
        if self.rule.best_from is not None:
            self.model.load_weights(self.run.path / KEPT_WEIGHTS)
        else:
            self.model.set_weights(self.start_weights)
        self.rule.record(self.run)


def phase_callbacks(
    run: Run, config: TrainConfig, phase: str, keeper: KeepBestCallback | None = None, monitor_auc: bool = True
) -> list:
    callbacks = [RunRecorder(run, phase)]
    if keeper is not None:
        keeper.phase = phase
        callbacks.insert(0, keeper)  # first, so the callbacks after it see the epoch's exact valid macro AUC
    if config.patience:
        # on what keep-best ranks epochs by (on valid loss, MixUp stopped runs while valid AUC still rose): the
        # keeper's scikit-learn figure; Keras' own AUC (200 fixed thresholds) read 0.830 where it was 0.847 for
        # an overconfident model, so it is the fallback without keep-best
        if keeper is not None:
            monitor, mode = VALID_MACRO_AUC, "max"
        else:
            monitor, mode = ("val_auc", "max") if monitor_auc else ("val_loss", "min")
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor, mode=mode, patience=config.patience, restore_best_weights=True
            )
        )
    if config.save_best:
        callbacks.append(
            keras.callbacks.ModelCheckpoint(
                run.path / BEST_WEIGHTS, monitor="val_loss", save_best_only=True, save_weights_only=True
            )
        )
    if phase == "unfrozen" and config.schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.3, patience=1))
    return callbacks


def resume_point(run: Run) -> tuple[str, int]:
    """The phase and epoch after the last one saved."""
    progress = run.info.get("progress")
    if not progress or not (run.path / CHECKPOINT).is_file():
        raise BenchmarkError(f"{run.path}: no finished epoch to resume from; start a new run")
    return progress["phase"], progress["epoch"] + 1


def fine_tune(
    model,
    run: Run,
    config: TrainConfig,
    train_data,
    valid_data,
    n_labels: int,
    steps: int,
    start: tuple[str, int] | None,
    keeper: KeepBestCallback | None = None,
    monitor_auc: bool = True,
) -> None:
    """Phase 1 with the body frozen, then phase 2 unfrozen at a much lower LR; ``start`` resumes mid-way
    (the checkpoint carries the compiled optimizer, so the resumed phase is not recompiled). ``monitor_auc``: early
    stopping watches valid AUC (every label rankable on valid), else valid loss."""
    verbose = 1 if sys.stdout.isatty() else 2
    phase, first_epoch = start or ("frozen", 0)
    if phase == "frozen" and first_epoch < config.freeze_epochs:
        if start is None:
            set_body_trainable(model, None)
            compile_phase(model, config, n_labels, "frozen", steps)
        model.fit(
            train_data,
            validation_data=valid_data,
            epochs=config.freeze_epochs,
            initial_epoch=first_epoch,
            shuffle=False,
            callbacks=phase_callbacks(run, config, "frozen", keeper, monitor_auc),
            verbose=verbose,
        )
    if config.epochs:
        if phase != "unfrozen":
            set_body_trainable(model, config.unfreeze)
            compile_phase(model, config, n_labels, "unfrozen", steps)
        model.fit(
            train_data,
            validation_data=valid_data,
            epochs=config.epochs,
            initial_epoch=first_epoch if phase == "unfrozen" else 0,
            shuffle=False,
            callbacks=phase_callbacks(run, config, "unfrozen", keeper, monitor_auc),
            verbose=verbose,
        )


def train(dataset_dir: Path | None, results_dir: Path, config: TrainConfig, resume: Path | None = None) -> Run:
    if resume:
        run = load_run(resume)
        if run.kind != KIND:
            raise BenchmarkError(f"{resume}: is a {run.info['kind']} run, not a Keras run")
        config = TrainConfig(**{k: v for k, v in run.params.items() if k in TrainConfig.__dataclass_fields__})
        dataset = dataset_of(run)
        start = resume_point(run)
    else:
        dataset = load_dataset(dataset_dir)
        start = None
    check_trainable(dataset)
    backbone = get_backbone(config.backbone)
    keras.utils.set_random_seed(config.seed)
    # A seed alone does not make a Keras run repeatable on the CPU: the augmentation map runs its random layers in
    # parallel tf.data calls that race for the seed state (the same seed gave macro AUC 0.699 and 0.705). With op
    # determinism tf.data runs stateful maps in order and reductions keep one summation order.
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    policy = precision_policy(config.precision, config.recipe)
    keras.mixed_precision.set_dtype_policy(policy)
    if not resume:
        run = create_run(
            results_dir,
            kind=KIND,
            dataset=dataset,
            backbone=backbone.name,
            params={**config.to_dict(), "lr_used": head_lr(config), "policy": policy},
        )
    print(f"run: {run.path}")
    with recording(run):
        run.update(status="running")
        train_data = training_data(dataset, config)
        valid_data = evaluation_data(dataset, ["valid"], config)
        steps = math.ceil(len(dataset.rows("train")) / config.bs)
        strategy = distribution_strategy()
        if strategy.num_replicas_in_sync > 1:  # --bs is the global batch, split across the replicas
            replicas = {"replicas": strategy.num_replicas_in_sync, "strategy": type(strategy).__name__}
            run.update(distributed={**replicas, "global_batch_size": config.bs})
        with strategy.scope():  # build, compile, fit, evaluate and predict under one strategy
            if start:
                print(f"resuming {start[0]} phase at epoch {start[1]}")
                try:
                    model = keras.saving.load_model(run.path / CHECKPOINT, safe_mode=True)
                except Exception as exc:  # truncated file, or one safe mode refuses (a Lambda layer)
                    raise BenchmarkError(
                        f"{run.path / CHECKPOINT}: cannot resume from it ({exc.__class__.__name__}); start a new run"
                    ) from None
            else:
                model = build_classifier(backbone, dataset.labels, config, policy)
                head = initial_head(run, dataset, config)
                if head is not None:  # LP-FT: Dense kernel is [features, labels]
                    model.get_layer("scores").set_weights([head[0].T, head[1]])
            clock = Stopwatch()
            keeper = None
            if keep_best_applies(config, dataset.targets("valid"), resumed=bool(resume)):
                valid_images = evaluation_data(dataset, ["valid"], config, with_targets=False)
                keeper = KeepBestCallback(model, run, config, valid_images, dataset.targets("valid"))
            monitor_auc = bool(rankable(dataset.targets("valid")).all())
            fine_tune(
                model, run, config, train_data, valid_data, len(dataset.labels), steps, start, keeper, monitor_auc
            )
            train_s = clock.seconds() + (run.timings.get("train_s", 0.0) if resume else 0.0)
            if config.save_best and (run.path / BEST_WEIGHTS).is_file():
                model.load_weights(run.path / BEST_WEIGHTS)
            if keeper is not None:
                keeper.restore()

            rows = dataset.rows(["valid", "test"])
            clock = Stopwatch()
            scores = model.predict(evaluation_data(dataset, ["valid", "test"], config, with_targets=False), verbose=0)
            predict_s = clock.seconds()
        run.write_predictions(list(rows["image"]), list(rows["split"]), scores)
        artifact = save_serving_artifact(
            model, run.path, backbone=backbone.name, labels=dataset.labels, img_size=config.img_size
        )
        run.finish(
            timings={
                "train_s": round(train_s, 2),
                "predict_s": round(predict_s, 2),
            },
            model={"path": artifact.name, "size_bytes": model_size_bytes(artifact), "precision": policy},
        )
    metrics = evaluate_run(run.path, dataset)
    summary = metrics["overall"]
    print(f"{run.path}: test macro AUC {summary['macro_roc_auc']:.3f}, mAP {summary['map']:.3f} (shared evaluator)")
    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m keras_model.train",
        description="Fine-tune the ImageNet EfficientNet-Lite (ported from the same PyTorch weights fastai uses) with "
        "Keras 3, multi-label with sigmoid outputs. Thresholds are tuned on valid by the shared evaluator; test is "
        "only predicted after training. --lr is the head's learning rate (auto = 1e-3; Keras has no lr_find); "
        "phase 2 uses lr x --fine-tune-lr-factor.",
    )
    add_common_arguments(parser, PRESETS)
    parser.add_argument("--fine-tune-lr-factor", type=float, help="phase-2 peak LR as a share of --lr (default 0.1)")
    parser.add_argument(
        "--schedule",
        choices=["cosine", "plateau"],
        help="phase-2 LR: warm-up + cosine decay (default) or ReduceLROnPlateau",
    )
    parser.add_argument("--dropout", type=float, help="dropout before the sigmoid layer (default 0.2)")
    parser.add_argument(
        "--precision",
        choices=["auto", "float32", "mixed_bfloat16", "mixed_float16"],
        help="auto (default): mixed_float16 on GPU, mixed_bfloat16 on CPUs with AMX, else float32",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    return trainer_main(argv, build_parser(), make_config, train, KIND)


if __name__ == "__main__":
    sys.exit(main())
