"""``python -m fastai_model.train``: fine-tune an ImageNet EfficientNet-Lite with fastai on a dataset in our format.

The story: parse config -> load dataset -> DataBlock -> vision_learner with registry weights -> lr_find ->
fine-tune (frozen head, then discriminative LRs) -> sigmoid scores for valid and test -> results format ->
the shared evaluator tunes thresholds and scores the run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import matplotlib

warnings.filterwarnings(
    "ignore", message=".*torch.jit.script.*deprecated", category=FutureWarning
)  # raised inside fastai's import
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from fastai.callback.core import Callback  # noqa: E402
from fastai.learner import Recorder  # noqa: E402
from fastai.torch_core import set_seed  # noqa: E402
from fastai.vision.all import ParamScheduler, SchedCos, SchedLin, combine_scheds, valley  # noqa: E402

from benchmarks.data.dataset import Dataset, load_dataset  # noqa: E402
from benchmarks.errors import BenchmarkError  # noqa: E402
from benchmarks.evaluation.evaluate import dataset_of, evaluate_run  # noqa: E402
from benchmarks.evaluation.metrics import rankable  # noqa: E402
from benchmarks.evaluation.results import Run, Stopwatch, create_run, load_run, model_size_bytes, recording  # noqa: E402
from benchmarks.models.backbones import get_backbone  # noqa: E402
from benchmarks.models.keep_best import KeepBest, keep_best_applies, start_label  # noqa: E402
from benchmarks.models.training import (  # noqa: E402
    MATCHED,
    add_common_arguments,
    check_trainable,
    initial_head,
    note_within_epoch,
    trainer_main,
    warmup_steps,
)

from . import distributed  # noqa: E402
from .config import PRESETS, TrainConfig, make_config  # noqa: E402
from .data import make_dataloaders  # noqa: E402
from .learner import build_learner, head_kwargs  # noqa: E402
from .serving import save_serving_artifact  # noqa: E402

KIND = "fastai"


class RunRecorder(Callback):
    """After each epoch: history row into run.json and a 'last' checkpoint, so Ctrl-C loses at most one epoch."""

    # after the Recorder has the epoch's values, and before EarlyStoppingCallback (63), which cancels the fit in
    # its after_epoch: at 90 the epoch that triggered early stopping went unrecorded and unseen by keep-best. So it
    # also runs before SkipToEpoch (70), and skips a resumed phase's finished epochs itself (``first_epoch``).
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
        row.update({name: (None if v is None else round(float(v), 5)) for name, v in zip(names, values)})
        save_checkpoint(self.learn)
        self.target_run.update(
            history=self.target_run.info.get("history", []) + [row],
            progress={"phase": self.phase, "epoch": self.learn.epoch},
        )


def save_checkpoint(learn) -> None:
    """``learn.save`` to a temporary name, then renamed: a crash mid-write never leaves a truncated 'last'."""
    if not distributed.is_main():
        return  # fastai saves from the main process only
    temporary = learn.save("last.partial", with_opt=True)
    os.replace(temporary, temporary.with_name("last.pth"))


def load_checkpoint(learn, run: Run) -> None:
    checkpoint = run.path / learn.model_dir / "last.pth"
    try:
        learn.load("last", with_opt=True)
    except Exception as exc:  # truncated file, or a pickle that torch's weights_only loader refuses
        raise BenchmarkError(
            f"{checkpoint}: cannot resume from it ({exc.__class__.__name__}); start a new run instead of --resume"
        ) from None


class KeepBestCallback(Callback):
    """Keep-best in fastai: the starting model is saved as 'best'; after each epoch the valid scores the AUC metric
    gathered are offered to the shared rule, 'best' is overwritten when it says so, and each fit ends by loading
    'best' (as fastai's ``SaveModelCallback`` does)."""

    order = RunRecorder.order + 1  # the epoch's metrics are in; the recorder has named its phase

    def __init__(self, learn, recorder: RunRecorder, config: TrainConfig):
        # sigmoid scores (our losses' activation); get_preds fires before/after_epoch on the learner's callbacks,
        # so this runs before the run's recorder is added
        scores, targets = learn.get_preds(dl=learn.dls.valid)
        self.rule = KeepBest(targets.numpy(), scores.float().numpy(), config.keep_best_confidence, start_label(config))
        self.recorder = recorder
        learn.save("best")

    def after_epoch(self):  # keep-best never applies to a resumed run, so no epoch here was skipped
        auc = next(metric for metric in self.learn.metrics if getattr(metric, "name", None) == "roc_auc_score")
        scores, targets = torch.cat(auc.preds).float().numpy(), torch.cat(auc.targs).numpy()
        if self.rule.offer(targets, scores, f"{self.recorder.phase} epoch {self.epoch}"):
            self.learn.save("best")

    def after_fit(self):
        self.learn.load("best")


def find_lr(learn, config: TrainConfig, out: Path) -> float:
    """fastai's lr_find valley suggestion, with the loss-vs-LR plot saved beside the run."""
    try:
        suggestion = float(learn.lr_find(suggest_funcs=(valley,), num_it=config.lr_find_iters, show_plot=False).valley)
    except IndexError:  # fastai's valley needs a few recorded losses; lr_find stops early when the loss diverges
        suggestion = LR_WITHOUT_SUGGESTION
        print(f"lr_find: too few points for a suggestion (raise --lr-find-iters); using lr {suggestion:g}")
    learn.recorder.plot_lr_find()
    plt.savefig(out, dpi=100, bbox_inches="tight")
    plt.close("all")
    return suggestion


LR_WITHOUT_SUGGESTION = 1e-3  # fastai's usual default, when lr_find has too few points to suggest one
FINE_TUNE_BASE_LR = 2e-3  # `Learner.fine_tune`'s own default base_lr


def runs_lr_find(config: TrainConfig) -> bool:
    """lr_find for ``--lr find``, and for ``--lr auto`` when the head starts random (fastai's own way). A head
    already fitted by the probe (LP-FT) leaves lr_find's loss nearly flat: its valley then fell at 2.5e-5 to 3e-4,
    fine-tuning hardly moved, and fastai ended 0.014 macro AUC below the same recipe at fine_tune's default 2e-3
    (docs/results.md, "The quick preset, ablated")."""
    return config.lr == "find" or (config.lr == "auto" and config.head_init == "random" and config.recipe != "matched")


def chosen_lr(config: TrainConfig) -> float:
    """The LR when lr_find does not run: the number given, else the matched recipe's (Keras') or fine_tune's."""
    if config.lr != "auto":
        return float(config.lr)
    return MATCHED.head_lr if config.recipe == "matched" else FINE_TUNE_BASE_LR


def fine_tune(
    learn,
    recorder: RunRecorder,
    config: TrainConfig,
    lr: float,
    full_size_dls=None,
    start: tuple[str, int] = ("frozen", 0),
) -> None:
    """``Learner.fine_tune`` opened into its two phases, with its exact schedule, so a run can resume
    mid-way and progressive resizing can change the image size between phases. The matched recipe keeps the phases
    and swaps the schedules: a constant LR with the body frozen, then one LR for every unfrozen layer on
    ``matched_schedule`` (``fit``, not ``fit_one_cycle``: no one-cycle LR and no momentum cycling)."""
    phase, first_epoch = start
    matched = config.recipe == "matched"
    if phase == "frozen" and first_epoch < config.freeze_epochs:
        recorder.start_phase("frozen", first_epoch)
        learn.freeze()
        if matched:
            learn.fit(config.freeze_epochs, lr, start_epoch=first_epoch)
        else:
            learn.fit_one_cycle(config.freeze_epochs, slice(lr), pct_start=0.99, start_epoch=first_epoch)
    if full_size_dls is not None:
        learn.dls = full_size_dls
    if config.epochs:
        start_epoch = first_epoch if phase == "unfrozen" else 0
        recorder.start_phase("unfrozen", start_epoch)
        if config.unfreeze:
            learn.freeze_to(-2)  # the last `unfreeze` stages and the head; early stages stay frozen
        else:
            learn.unfreeze()
        if matched:
            peak = lr * MATCHED.fine_tune_lr_factor
            schedule = ParamScheduler({"lr": matched_schedule(peak, config.epochs * len(learn.dls.train))})
            learn.fit(config.epochs, peak, cbs=schedule, start_epoch=start_epoch)
        else:
            base = lr / 2
            learn.fit_one_cycle(
                config.epochs, slice(base / config.lr_mult, base), pct_start=0.3, div=5.0, start_epoch=start_epoch
            )


def matched_schedule(peak: float, total_steps: int):
    """The matched recipe's unfrozen-phase LR as a function of the share of training done: Keras' ``CosineDecay``
    with warm-up (linear from peak/10 to peak, then cosine to 0), written with fastai's own schedulers."""
    warm = warmup_steps(total_steps, MATCHED.warmup) / total_steps
    return combine_scheds([warm, 1 - warm], [SchedLin(peak / 10, peak), SchedCos(peak, 0.0)])


def predict_eval_splits(learn, dataset: Dataset) -> tuple[pd.DataFrame, np.ndarray, float]:
    """Sigmoid scores for every valid and test image (test is seen here for the first time)."""
    rows = dataset.rows(["valid", "test"])
    frame = pd.DataFrame({"image": [str(dataset.root / r) for r in rows["image"]], "labels": ""})
    dl = learn.dls.test_dl(frame)
    start = time.perf_counter()
    scores = learn.get_preds(dl=dl)[0]  # no TTA: the served predictor has none, and served must equal scored
    seconds = time.perf_counter() - start
    return rows, scores.float().numpy(), seconds


def train(dataset_dir: Path, results_dir: Path, config: TrainConfig, resume: Path | None = None) -> Run:
    """One fastai run: LP-FT head (or fastai's own), lr_find, the two phases, scores, the shared evaluator."""
    if resume:
        run = load_run(resume)
        if run.kind != KIND:
            raise BenchmarkError(f"{resume}: is a {run.info['kind']} run, not a fastai run")
        config = TrainConfig(**{k: v for k, v in run.params.items() if k in TrainConfig.__dataclass_fields__})
        dataset = dataset_of(run)
    else:
        dataset = load_dataset(dataset_dir)
    check_trainable(dataset)
    backbone = get_backbone(config.backbone)
    distributed.start()
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    set_seed(config.seed, reproducible=config.reproducible)
    if resume and not distributed.is_main():
        run = distributed.FollowerRun(run.path, run.info)
    elif not resume:
        run = distributed.shared_run(
            lambda: create_run(results_dir, kind=KIND, dataset=dataset, backbone=backbone.name, params=config.to_dict())
        )
    print(f"run: {run.path}")
    with recording(run):
        run.update(status="running", **distributed.run_fields(config.bs))
        first_size = round(config.img_size * 0.75 / 32) * 32 if config.progressive else config.img_size
        dls = make_dataloaders(dataset, backbone, config, size=first_size)
        full_dls = make_dataloaders(dataset, backbone, config) if config.progressive else None
        monitor_auc = bool(rankable(dataset.targets("valid")).all())
        clock = Stopwatch()
        resumable = bool(resume) and "lr_used" in run.params and run.info.get("progress") is not None
        head = None if resumable else distributed.from_main(lambda: initial_head(run, dataset, config))
        learn = build_learner(
            dls, backbone, config, path=run.path.resolve(), monitor_auc=monitor_auc, probe_head=head
        )  # fastai joins learn.path with file names
        recorder = RunRecorder(run)
        start = ("frozen", 0)
        if resume and not resumable:
            print("no finished epoch to resume from (the run stopped before its first one ended): starting it again")
        if resumable:
            lr = float(run.params["lr_used"])
            load_checkpoint(learn, run)
            progress = run.info["progress"]
            start = (progress["phase"], progress["epoch"] + 1)
            if start[0] == "frozen" and start[1] >= config.freeze_epochs:
                start = ("unfrozen", 0)
            print(f"resuming {start[0]} phase at epoch {start[1]}")
        elif runs_lr_find(config):
            lr = distributed.from_main(lambda: find_lr(learn, config, run.path / "lr_find.png"))
            run.update(
                params={**run.params, "lr_used": lr, "lr_find_suggestion": lr},
                lr_find={"valley": lr, "plot": "lr_find.png", "seconds": clock.seconds()},
            )
        else:
            lr = chosen_lr(config)
            run.update(params={**run.params, "lr_used": lr})
        applies = keep_best_applies(config, dataset.targets("valid"), resumed=bool(resume))
        keeper = KeepBestCallback(learn, recorder, config) if applies else None  # scores valid: before the recorder
        learn.add_cb(recorder)
        if keeper is not None:
            learn.add_cb(keeper)
        with distributed.data_parallel(learn):
            fine_tune(learn, recorder, config, lr, full_dls, start)
        if distributed.leave_after_training():
            return run  # the main process scores and saves the model the processes trained together
        if keeper is not None:
            learn.remove_cb(keeper)
            keeper.rule.record(run)
        train_s = clock.seconds() + run.timings.get("train_s", 0.0) if resumable else clock.seconds()
        learn.remove_cb(recorder)

        learn.to_fp32()  # score valid/test in fp32 as the serving artifact does: served scores = the leaderboard's
        rows, scores, predict_s = predict_eval_splits(learn, dataset)
        run.write_predictions(list(rows["image"]), list(rows["split"]), scores)
        artifact = save_serving_artifact(
            learn.model,
            run.path,
            arch=backbone.timm_arch,
            backbone=backbone.name,
            labels=dataset.labels,
            img_size=config.img_size,
            head_kwargs=head_kwargs(config.head_init, config.recipe),
        )
        learn.export("export.pkl")
        run.finish(
            timings={
                "train_s": round(train_s, 2),
                "predict_s": round(predict_s, 2),
            },
            model={
                "path": artifact.name,
                "size_bytes": model_size_bytes(artifact),
                "fastai_export": "export.pkl",
                "precision": learn.precision,
            },
        )
    metrics = evaluate_run(run.path, dataset)
    summary = metrics["overall"]
    print(f"{run.path}: test macro AUC {summary['macro_roc_auc']:.3f}, mAP {summary['map']:.3f} (shared evaluator)")
    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fastai_model.train",
        description="Fine-tune an ImageNet-pretrained EfficientNet-Lite with fastai (multi-label, sigmoid outputs). "
        "Thresholds are tuned on valid by the shared evaluator; test is only predicted after training. "
        "--lr auto: fine_tune's default 2e-3 when the head starts from the probe (LP-FT, the default), lr_find's "
        "valley when it starts random (--head-init random); --lr find always runs lr_find.",
    )
    add_common_arguments(parser, PRESETS)
    parser.add_argument(
        "--no-train-bn",
        dest="train_bn",
        action="store_false",
        default=None,
        help="keep frozen BatchNorm layers frozen (fastai trains them by default)",
    )
    parser.add_argument(
        "--lr-mult",
        type=int,
        help="discriminative LRs: body start trains this many times slower than the head (default 100)",
    )
    parser.add_argument(
        "--progressive", action="store_true", default=None, help="progressive resizing: frozen phase at 3/4 size"
    )
    parser.add_argument("--tta", action="store_true", default=None, help=argparse.SUPPRESS)  # refused: served = scored
    parser.add_argument("--grad-accum", type=int, help="accumulate gradients over N batches")
    parser.add_argument(
        "--item-tfm", choices=["resize", "rrc"], help="item transform: resize (default) or RandomResizedCrop"
    )
    parser.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16", "fp16"],
        help="auto (default): bf16 on CPUs with native bf16, fp16 on CUDA",
    )
    parser.add_argument("--lr-find-iters", type=int, help="lr_find iterations (default 100)")
    parser.add_argument("--reproducible", action="store_true", default=None, help="set_seed(reproducible=True)")
    return parser


def main(argv: list[str] | None = None) -> int:
    return trainer_main(argv, build_parser(), make_config, train, KIND)


if __name__ == "__main__":
    sys.exit(main())
