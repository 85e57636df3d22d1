"""fastai callbacks of a run: the recorder (history and a resumable checkpoint each epoch), keep-best, and the
framework's own callbacks the options ask for."""

from __future__ import annotations

import math
import os
import time

import torch
from fastai.callback.core import Callback
from fastai.learner import Recorder
from fastai.vision.all import EarlyStoppingCallback, GradientAccumulation, MixUp

from benchmarks.errors import BenchmarkError
from benchmarks.evaluation.results import Run
from benchmarks.training.keep_best import KeepBest, start_label
from benchmarks.training.lifecycle import note_within_epoch

from . import distributed
from .config import TrainConfig

CHECKPOINT = "last"  # learn.save names: checkpoints/last.pth, checkpoints/best.pth, checkpoints/start.pth
KEPT = "best"
START_WEIGHTS = "start"


class RunRecorder(Callback):
    """After each epoch: history row into run.json and a 'last' checkpoint, so Ctrl-C loses at most one epoch."""

    # after the Recorder has the epoch's values, and before EarlyStoppingCallback (63), which cancels the fit in
    # its after_epoch; before SkipToEpoch (70) too, so it skips a resumed phase's finished epochs itself
    order = Recorder.order + 1

    def __init__(self, run: Run):
        self.target_run = run
        self.phase = "frozen"
        self.first_epoch = 0  # the phase's fit starts here (start_epoch): earlier epochs are skipped, not run
        self.epoch_started = None  # set only for epochs that really run

    def start_phase(self, phase: str, first_epoch: int) -> None:
        self.phase, self.first_epoch = phase, first_epoch

    def before_epoch(self):
        if self.learn.epoch < self.first_epoch:
            return  # SkipToEpoch cancels it after this callback
        self.epoch_started = time.perf_counter()
        self.last_note = None

    def after_batch(self):
        if self.training and self.epoch_started is not None:
            self.last_note = note_within_epoch(
                self.target_run, self.last_note, self.phase, self.learn.epoch, self.learn.iter + 1, self.learn.n_iter
            )

    def after_epoch(self):
        if self.epoch_started is None:  # fastai calls after_epoch for epochs SkipToEpoch cancelled, too
            return
        started, self.epoch_started = self.epoch_started, None
        names = [n for n in self.learn.recorder.metric_names if n not in ("epoch", "time")]
        values = self.learn.recorder.values[-1] if self.learn.recorder.values else []
        row = {"phase": self.phase, "epoch": self.learn.epoch, "seconds": round(time.perf_counter() - started, 2)}
        # a metric fastai could not compute (a valid label with no positive image) is NaN: run.json records null
        row.update({name: (round(float(v), 5) if _finite(v) else None) for name, v in zip(names, values)})
        save_checkpoint(self.learn)
        self.target_run.update(
            history=self.target_run.info.get("history", []) + [row],
            progress={"phase": self.phase, "epoch": self.learn.epoch},
        )


def _finite(value) -> bool:
    return value is not None and math.isfinite(float(value))


def save_checkpoint(learn) -> None:
    """``learn.save`` to a temporary name, then renamed: a crash mid-write never leaves a truncated 'last'."""
    if not distributed.is_main():
        return  # fastai saves from the main process only
    temporary = learn.save(f"{CHECKPOINT}.partial", with_opt=True)
    os.replace(temporary, temporary.with_name(f"{CHECKPOINT}.pth"))


def load_checkpoint(learn, run: Run) -> None:
    checkpoint = run.path / learn.model_dir / f"{CHECKPOINT}.pth"
    try:
        learn.load(CHECKPOINT, with_opt=True)
    except Exception as exc:  # missing or truncated file, or a pickle that torch's weights_only loader refuses
        raise BenchmarkError(
            f"{checkpoint}: cannot resume from it ({exc.__class__.__name__}); start a new run instead of --resume"
        ) from None


class KeepBestCallback(Callback):
    """Keep-best in fastai: the starting model is saved as 'best'; after each epoch the valid scores the AUC metric
    gathered are offered to the shared rule, 'best' is overwritten when it says so, and each fit ends by loading
    'best' (as fastai's ``SaveModelCallback`` does)."""

    order = RunRecorder.order + 1  # the epoch's metrics are in; the recorder has named its phase

    def __init__(self, learn, recorder: RunRecorder, config: TrainConfig):
        # get_preds fires before/after_epoch on the learner's callbacks, so this runs before the recorder is added
        scores, targets = learn.get_preds(dl=learn.dls.valid)
        start = start_label(config)
        self.rule = KeepBest(
            targets.numpy(),
            scores.float().numpy(),
            config.keep_best_confidence,
            start,
            recorder.target_run,
            wise_ft=config.wise_ft,
        )
        self.recorder = recorder
        learn.save(KEPT)

    def after_epoch(self):  # keep-best never applies to a resumed run, so no epoch here was skipped
        auc = next(metric for metric in self.learn.metrics if getattr(metric, "name", None) == "roc_auc_score")
        scores, targets = torch.cat(auc.preds).float().numpy(), torch.cat(auc.targs).numpy()
        if self.rule.offer(targets, scores, f"{self.recorder.phase} epoch {self.epoch}"):
            self.learn.save(KEPT)

    def after_fit(self):
        if not self.rule.blends:  # under WiSE-FT the last epoch stays, to be blended and judged (``judge_blend``)
            self.learn.load(KEPT)

    def judge_blend(self, learn) -> None:
        """After ``average_with_start`` (this callback removed, so ``learn`` is passed): the blend stays if it beats
        the start on valid beyond the noise, else the start comes back (``kept`` in run.json says which)."""
        scores, targets = learn.get_preds(dl=learn.dls.valid)
        if not self.rule.judge_blend(targets.numpy(), scores.float().numpy()):
            average_with_start(learn, 0.0)  # all the way back: the start's weights


def save_start(learn) -> None:
    """The weights before any training, for ``--wise-ft``; on disk, so a resumed run averages with the same start
    (written to a temporary name and renamed, as the checkpoint is)."""
    if not distributed.is_main():
        return
    temporary = learn.save(f"{START_WEIGHTS}.partial", with_opt=False)
    os.replace(temporary, temporary.with_name(f"{START_WEIGHTS}.pth"))


def average_with_start(learn, share: float) -> None:
    """WiSE-FT (Wortsman et al. 2022): the model moves back to start + share × (trained − start), every floating
    tensor (BatchNorm statistics too); integer counters stay as trained."""
    start = torch.load(learn.path / learn.model_dir / f"{START_WEIGHTS}.pth", map_location="cpu", weights_only=True)
    blend_into(learn.model.state_dict(), start, share)


def blend_into(state: dict, start: dict, share: float) -> None:
    """In place: every floating tensor of ``state`` becomes start + share × (state − start); integer counters stay."""
    with torch.no_grad():
        for name, tensor in state.items():
            if tensor.is_floating_point():
                tensor.lerp_(start[name].to(tensor.device, tensor.dtype), 1 - share)


def training_callbacks(config: TrainConfig, monitor_auc: bool = True) -> list:
    """fastai's own callbacks for the options: MixUp, gradient accumulation, early stopping (on valid macro AUC,
    what keep-best ranks epochs by; valid loss where a label is unrankable on valid). Early stopping only stops:
    which weights the run ends with is keep-best's choice alone."""
    callbacks = []
    if config.mixup:
        callbacks.append(MixUp())
    if config.grad_accum > 1:
        callbacks.append(GradientAccumulation(n_acc=config.bs * config.grad_accum))
    if config.patience:
        monitor = "roc_auc_score" if monitor_auc else "valid_loss"  # fastai: max for a metric, min for a loss
        callbacks.append(EarlyStoppingCallback(monitor=monitor, patience=config.patience))
    return callbacks
