"""``python -m keras_model.train``: fine-tune the ported ImageNet EfficientNet-Lite with Keras 3 on a dataset in our
format.

The story: open the run -> input (tf.data, or Keras' PyDataset without TensorFlow) -> ported body + sigmoid head ->
learning rate -> fine-tune (phase 1 body frozen, phase 2 unfrozen at a much lower LR) -> sigmoid scores for valid
and test -> close the run (results format, the shared evaluator). ``fastai_model/train.py`` reads in the same order
with the same names.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from benchmarks.data.dataset import Dataset
from benchmarks.evaluation.metrics import rankable
from benchmarks.evaluation.results import EVAL_SPLITS, Run, Stopwatch, recording
from benchmarks.training.keep_best import keep_best_applies
from benchmarks.training.lifecycle import (
    START,
    ResumePoint,
    close_run,
    initial_head,
    open_run,
    score_run,
    trainer_main,
)

from . import backends, distributed

if __name__ == "__main__":  # the command line's --backend, before Keras is first imported (keras_model/backends.py)
    backends.choose_from_argv(sys.argv[1:])

from .backbone import keras  # noqa: E402
from .callbacks import (  # noqa: E402
    KeepBestCallback,
    ValidPass,
    average_with_start,
    load_checkpoint,
    save_start,
    training_callbacks,
)
from .config import TrainConfig, build_parser, head_lr, make_config  # noqa: E402
from .inputs import evaluation_input, training_input  # noqa: E402
from .model import build_classifier, compile_phase, precision_policy, set_body_trainable  # noqa: E402
from .serving import save_serving_artifact  # noqa: E402

KIND = "keras"
# the server runs every Keras model on TensorFlow, which a JAX or PyTorch training process cannot switch to
SERVED_ON_TENSORFLOW = (
    "served on TensorFlow, not this process's backend; tests/test_keras_backends.py holds the two to 1e-4"
)


def train(dataset_dir: Path | None, results_dir: Path, config: TrainConfig, resume: Path | None = None) -> Run:
    """One Keras run: LP-FT head (or Keras' own), the learning rate, the two phases, scores, the evaluator."""
    opening = open_run(KIND, config, dataset_dir, resume)
    dataset, config, backbone = opening.dataset, opening.config, opening.backbone
    config.backend = backends.loaded(config.backend)
    set_seed(config.seed, config.loader)
    policy = precision_policy(config.precision, config.recipe, config.backend)
    keras.mixed_precision.set_dtype_policy(policy)
    strategy = distributed.strategy(config.backend)
    run = opening.run or opening.create_run(results_dir, lr_used=head_lr(config), policy=policy)
    print(f"run: {run.path}")
    with recording(run):
        run.update(status="running", **distributed.run_fields(strategy, config.bs))
        train_data = training_input(dataset, config)
        valid_images = evaluation_input(dataset, ["valid"], config, with_targets=False)
        monitor_auc = bool(rankable(dataset.targets("valid")).all())
        with strategy.scope():  # build, compile, fit, evaluate and predict under one strategy
            if opening.resume:
                model = load_checkpoint(run)
            else:
                model = build_classifier(backbone, dataset.labels, config, policy)
                head = initial_head(run, dataset, config)
                if head is not None:  # LP-FT: Dense kernel is [features, labels]
                    model.get_layer("scores").set_weights([head[0].T, head[1]])
                if config.wise_ft < 1:
                    save_start(model, run)
            clock = Stopwatch()
            if keep_best_applies(config, dataset.targets("valid"), resumed=opening.resume is not None):
                valid_pass = KeepBestCallback(model, run, config, valid_images, dataset.targets("valid"))
            else:
                valid_pass = ValidPass(valid_images, dataset.targets("valid"))
            steps = math.ceil(len(dataset.rows("train")) / config.bs)
            fine_tune(model, run, config, train_data, valid_pass, steps, opening.resume, monitor_auc)
            if isinstance(valid_pass, KeepBestCallback):
                valid_pass.restore()
            if config.wise_ft < 1:
                average_with_start(model, run, config.wise_ft)
                if isinstance(valid_pass, KeepBestCallback):
                    valid_pass.judge_blend(model)
            train_s = opening.train_seconds(clock.seconds())

            scores, predict_s = predict_eval_splits(model, dataset, config)
        artifact = save_serving_artifact(
            model, run.path, backbone.name, dataset.labels, config.img_size, config.backend
        )
        elsewhere = None if config.backend == "tensorflow" else SERVED_ON_TENSORFLOW
        close_run(
            run,
            dataset,
            scores,
            artifact,
            train_s=train_s,
            predict_s=predict_s,
            served_elsewhere=elsewhere,
            precision=policy,
        )
    return score_run(run, dataset)


def set_seed(seed: int, loader: str = "tf.data") -> None:
    """Keras' seed, and for tf.data TensorFlow's op determinism: with a seed alone the augmentation map's random
    layers race for the seed state in parallel tf.data calls, and the same seed gave different runs. (The PyDataset
    draws in batch order on one worker.)"""
    keras.utils.set_random_seed(seed)
    if loader == "tf.data":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def fine_tune(
    model,
    run: Run,
    config: TrainConfig,
    train_data,
    valid_pass: ValidPass,
    steps: int,
    resume: ResumePoint | None,
    monitor_auc: bool = True,
) -> None:
    """Phase 1 with the body frozen, then phase 2 unfrozen at a much lower LR (the Keras transfer-learning guide).
    A resumed run continues at ``resume`` with the checkpoint's compiled optimizer, so its phase is not recompiled.
    ``valid_pass`` scores valid once per epoch (keep-best's where it runs); ``monitor_auc``: early stopping watches
    valid AUC (every label rankable on valid), else valid loss."""
    verbose = 1 if sys.stdout.isatty() else 2
    start = resume or START
    if start.phase == "frozen" and start.epoch < config.freeze_epochs:
        if resume is None:
            set_body_trainable(model, None)
            compile_phase(model, config, "frozen", steps)
        model.fit(
            train_data,
            epochs=config.freeze_epochs,
            initial_epoch=start.epoch,
            shuffle=False,
            callbacks=training_callbacks(run, config, "frozen", valid_pass, monitor_auc),
            verbose=verbose,
        )
    if config.epochs:
        if start.phase != "unfrozen":
            set_body_trainable(model, config.unfreeze)
            compile_phase(model, config, "unfrozen", steps)
        model.fit(
            train_data,
            epochs=config.epochs,
            initial_epoch=start.epoch if start.phase == "unfrozen" else 0,
            shuffle=False,
            callbacks=training_callbacks(run, config, "unfrozen", valid_pass, monitor_auc),
            verbose=verbose,
        )


def predict_eval_splits(model, dataset: Dataset, config: TrainConfig) -> tuple[np.ndarray, float]:
    """Sigmoid scores for every valid and test image (``EVAL_SPLITS`` order), and the seconds they took."""
    clock = Stopwatch()
    scores = model.predict(evaluation_input(dataset, EVAL_SPLITS, config, with_targets=False), verbose=0)
    return np.asarray(scores), clock.seconds()


def main(argv: list[str] | None = None) -> int:
    return trainer_main(argv, build_parser(), make_config, train, KIND)


if __name__ == "__main__":
    sys.exit(main())
