"""Keras callbacks of a run: the recorder (history and a resumable checkpoint each epoch), keep-best, and the
framework's own callbacks the options ask for."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from benchmarks.atomic import atomic_write
from benchmarks.errors import BenchmarkError
from benchmarks.evaluation.metrics import macro_auc, rankable
from benchmarks.evaluation.results import Run
from benchmarks.evaluation.run_record import shared_loss_names
from benchmarks.training.keep_best import KeepBest, start_label
from benchmarks.training.lifecycle import note_within_epoch

from .backbone import keras
from .config import TrainConfig

CHECKPOINT = Path("checkpoints") / "last.keras"
KEPT = Path("checkpoints") / "kept.weights.h5"
START_WEIGHTS = Path("checkpoints") / "start.weights.h5"
VALID_MACRO_AUC = "val_macro_auc"  # the evaluator's scikit-learn figure, put into each epoch's logs


class RunRecorder(keras.callbacks.Callback):
    """After each epoch: history row into run.json and the whole model (with optimizer state) saved atomically, so
    Ctrl-C loses at most one epoch. (``BackupAndRestore`` resumes one ``fit`` call and writes in place; a run is
    two fits, and a kill mid-write would leave a broken file.)"""

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
        row.update({name: round(float(value), 5) for name, value in shared_loss_names(logs or {}).items()})
        save_checkpoint(self.model, self.target_run)
        self.target_run.update(
            history=self.target_run.info.get("history", []) + [row], progress={"phase": self.phase, "epoch": epoch}
        )


def save_checkpoint(model, run: Run) -> None:
    """The whole model with its optimizer state, written to a temporary file and renamed."""
    atomic_write(run.path / CHECKPOINT, lambda tmp: model.save(tmp), suffix=".keras")


def load_checkpoint(run: Run):
    """The model as the last finished epoch left it, optimizer compiled in (a resumed phase is not recompiled)."""
    try:
        return keras.saving.load_model(run.path / CHECKPOINT, safe_mode=True)
    except Exception as exc:  # missing or truncated file, or one safe mode refuses (a Lambda layer)
        raise BenchmarkError(
            f"{run.path / CHECKPOINT}: cannot resume from it ({exc.__class__.__name__}); start a new run instead of "
            "--resume"
        ) from None


class ValidPass(keras.callbacks.Callback):
    """The epoch's one valid pass, as fastai's validation is: the valid images scored once, their loss and (where
    every label is rankable on valid) the evaluator's exact macro AUC put into the logs that early stopping, the
    plateau schedule, the history and the tuner's pruner read. fit gets no ``validation_data`` and compiles no AUC
    metric (Keras' 200-threshold AUC, updated on every training batch, cost ~5 % of a step on 2 cores)."""

    def __init__(self, valid_images, valid_targets: np.ndarray):
        super().__init__()
        self.valid_images, self.valid_targets = valid_images, valid_targets

    def score(self, model) -> np.ndarray:
        return np.asarray(model.predict(self.valid_images, verbose=0), dtype=np.float32)

    def on_epoch_end(self, epoch, logs=None):
        self.scores = self.score(self.model)
        if logs is not None:  # Keras hands every callback the same dict: the callbacks after this one read it
            loss = keras.losses.get(self.model.loss)  # the compiled loss (a name gives Keras' per-image function)
            value = loss(self.valid_targets.astype(np.float32), self.scores)  # a tensor of the run's backend
            logs["val_loss"] = float(np.mean(keras.ops.convert_to_numpy(value)))
            if rankable(self.valid_targets).all():
                logs[VALID_MACRO_AUC] = macro_auc(self.valid_targets, self.scores)


class KeepBestCallback(ValidPass):
    """Keep-best in Keras, on the epoch's valid pass: the starting weights kept in memory; each epoch's valid scores
    offered to the shared rule, whose "best so far" weights are saved (``KEPT``); ``restore`` puts back the kept
    weights, or the start's."""

    def __init__(self, model, run: Run, config: TrainConfig, valid_images, valid_targets: np.ndarray):
        super().__init__(valid_images, valid_targets)
        self.run = run
        start = start_label(config)
        self.rule = KeepBest(
            valid_targets, self.score(model), config.keep_best_confidence, start, run, wise_ft=config.wise_ft
        )
        self.start_weights = model.get_weights()
        self.phase = "frozen"
        (run.path / KEPT).unlink(missing_ok=True)

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if self.rule.offer(self.valid_targets, self.scores, f"{self.phase} epoch {epoch}"):
            (self.run.path / KEPT).parent.mkdir(exist_ok=True)  # it runs before the run recorder makes it
            self.model.save_weights(self.run.path / KEPT)

    def restore(self) -> None:
        if self.rule.blends:  # under WiSE-FT the last epoch stays, to be blended and judged (``judge_blend``)
            return
        if self.rule.best_from is not None:
            self.model.load_weights(self.run.path / KEPT)
        else:
            self.model.set_weights(self.start_weights)
        self.rule.record(self.run)

    def judge_blend(self, model) -> None:
        """After ``average_with_start``: the blend stays if it beats the start on valid beyond the noise, else the
        start comes back; either way run.json says which (``kept``)."""
        if not self.rule.judge_blend(self.valid_targets, self.score(model)):
            model.set_weights(self.start_weights)
        self.rule.record(self.run)


def save_start(model, run: Run) -> None:
    """The weights before any training, for ``--wise-ft``; on disk, so a resumed run averages with the same start."""
    atomic_write(run.path / START_WEIGHTS, lambda tmp: model.save_weights(tmp), suffix=".weights.h5")


def average_with_start(model, run: Run, share: float) -> None:
    """WiSE-FT (Wortsman et al. 2022): the model moves back to start + share × (trained − start), every floating
    weight (BatchNorm statistics too); integer counters stay as trained."""
    trained = model.get_weights()
    model.load_weights(run.path / START_WEIGHTS)
    model.set_weights(blend_weights(model.get_weights(), trained, share))


def blend_weights(start: list, trained: list, share: float) -> list:
    """start + share × (trained − start) for every floating array of ``get_weights()``; integer counters as trained."""
    return [s + share * (t - s) if np.issubdtype(t.dtype, np.floating) else t for s, t in zip(start, trained)]


def training_callbacks(
    run: Run, config: TrainConfig, phase: str, valid_pass: ValidPass | None = None, monitor_auc: bool = True
) -> list:
    """One phase's callbacks: the valid pass first (keep-best's where it runs; the callbacks after it see the epoch's
    valid loss and exact macro AUC), the recorder, early stopping on that macro AUC as keep-best ranks epochs by
    (valid loss where a label is unrankable on valid), and ReduceLROnPlateau for ``--schedule plateau``. Early
    stopping only stops: which weights the run ends with is keep-best's choice alone. Without ``valid_pass`` (the
    throughput probe) nothing scores valid."""
    callbacks = [RunRecorder(run, phase)]
    if valid_pass is not None:
        valid_pass.phase = phase
        callbacks.insert(0, valid_pass)
    if config.patience:
        monitor, mode = (VALID_MACRO_AUC, "max") if monitor_auc else ("val_loss", "min")
        callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=config.patience))
    if phase == "unfrozen" and config.schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.3, patience=1))
    return callbacks
