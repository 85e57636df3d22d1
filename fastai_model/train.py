"""``python -m fastai_model.train``: fine-tune an ImageNet EfficientNet-Lite with fastai on a dataset in our format.

The story: open the run -> DataBlock -> vision_learner with registry weights -> learning rate -> fine-tune (frozen
head, then discriminative LRs) -> sigmoid scores for valid and test -> close the run (results format, the shared
evaluator). ``keras_model/train.py`` reads in the same order with the same names.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from fastai.learner import Learner  # noqa: E402
from fastai.torch_core import set_seed  # noqa: E402
from fastai.vision.all import ParamScheduler, SchedCos, SchedLin, combine_scheds, valley  # noqa: E402

from benchmarks.data.dataset import Dataset  # noqa: E402
from benchmarks.evaluation.metrics import rankable  # noqa: E402
from benchmarks.evaluation.results import EVAL_SPLITS, Run, Stopwatch, recording  # noqa: E402
from benchmarks.training.keep_best import keep_best_applies  # noqa: E402
from benchmarks.training.lifecycle import (  # noqa: E402
    START,
    ResumePoint,
    close_run,
    initial_head,
    open_run,
    score_run,
    trainer_main,
)
from benchmarks.training.options import MATCHED, warmup_steps  # noqa: E402

from . import distributed  # noqa: E402
from .callbacks import KeepBestCallback, RunRecorder, average_with_start, load_checkpoint, save_start  # noqa: E402
from .config import TrainConfig, build_parser, make_config  # noqa: E402
from .data import make_dataloaders  # noqa: E402
from .learner import build_learner, head_kwargs  # noqa: E402
from .serving import save_serving_artifact  # noqa: E402

KIND = "fastai"
FINE_TUNE = {  # Learner.fine_tune's own defaults (base_lr 2e-3, lr_mult 100, pct_start 0.3, div 5), read, not copied
    name: p.default for name, p in inspect.signature(Learner.fine_tune).parameters.items() if p.default is not p.empty
}
LR_WITHOUT_SUGGESTION = 1e-3  # fastai's usual default, when lr_find has too few points to suggest one


def train(dataset_dir: Path | None, results_dir: Path, config: TrainConfig, resume: Path | None = None) -> Run:
    """One fastai run: LP-FT head (or fastai's own), the learning rate, the two phases, scores, the evaluator."""
    opening = open_run(KIND, config, dataset_dir, resume)
    dataset, config, backbone = opening.dataset, opening.config, opening.backbone
    distributed.start()
    set_seed(config.seed, reproducible=config.reproducible)
    run = distributed.shared_run(opening.run, lambda: opening.create_run(results_dir))
    print(f"run: {run.path}")
    with recording(run):
        run.update(status="running", **distributed.run_fields(config.bs))
        first_size = round(config.img_size * 0.75 / 32) * 32 if config.progressive else config.img_size
        dls = make_dataloaders(dataset, backbone, config, size=first_size)
        full_size_dls = make_dataloaders(dataset, backbone, config) if config.progressive else None
        monitor_auc = bool(rankable(dataset.targets("valid")).all())
        head = None if opening.resume else distributed.from_main(lambda: initial_head(run, dataset, config))
        learn = build_learner(  # fastai joins learn.path with file names
            dls, backbone, config, path=run.path.resolve(), monitor_auc=monitor_auc, probe_head=head
        )
        clock = Stopwatch()
        if opening.resume:
            load_checkpoint(learn, run)
        elif config.wise_ft < 1:
            save_start(learn)
        lr = learning_rate(learn, run, config, opening.resume, clock)
        recorder = RunRecorder(run)
        keeper = None
        if keep_best_applies(config, dataset.targets("valid"), resumed=opening.resume is not None):
            keeper = KeepBestCallback(learn, recorder, config)  # scores valid: before the recorder is added
        learn.add_cbs([recorder, keeper] if keeper else [recorder])
        with distributed.data_parallel(learn):
            fine_tune(learn, recorder, config, lr, full_size_dls, opening.resume or START)
        if distributed.leave_after_training():
            return run  # the main process scores and saves the model the processes trained together
        learn.remove_cbs([recorder, keeper] if keeper else [recorder])
        if config.wise_ft < 1:
            average_with_start(learn, config.wise_ft)
            if keeper is not None:
                keeper.judge_blend(learn)
        if keeper is not None:
            keeper.rule.record(run)
        train_s = opening.train_seconds(clock.seconds())

        learn.to_fp32()  # score valid/test in fp32 as the serving artifact does: served scores = the leaderboard's
        scores, predict_s = predict_eval_splits(learn, dataset)
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
        model = {"fastai_export": "export.pkl", "precision": learn.precision}
        close_run(run, dataset, scores, artifact, train_s=train_s, predict_s=predict_s, **model)
    return score_run(run, dataset)


def learning_rate(learn, run: Run, config: TrainConfig, resume: ResumePoint | None, clock: Stopwatch) -> float:
    """The LR the run trains at, recorded as ``lr_used``: a resumed run's own; lr_find's valley where it runs
    (``runs_lr_find``); else the number given, the matched recipe's, or ``fine_tune``'s default."""
    if resume:
        return float(run.params["lr_used"])
    if runs_lr_find(config):
        lr = distributed.from_main(lambda: find_lr(learn, config, run.path / "lr_find.png"))
        run.update(
            params={**run.params, "lr_used": lr, "lr_find_suggestion": lr},
            lr_find={"valley": lr, "plot": "lr_find.png", "seconds": clock.seconds()},
        )
        return lr
    lr = chosen_lr(config)
    run.update(params={**run.params, "lr_used": lr})
    return lr


def runs_lr_find(config: TrainConfig) -> bool:
    """lr_find for ``--lr find``, and for ``--lr auto`` when the head starts random (fastai's own way). A head
    already fitted by the probe (LP-FT) leaves lr_find's loss nearly flat, and its valley LR hardly moves the
    model (docs/results.md, "The quick preset, ablated")."""
    return config.lr == "find" or (config.lr == "auto" and config.head_init == "random" and config.recipe != "matched")


def chosen_lr(config: TrainConfig) -> float:
    """The LR when lr_find does not run: the number given, else the matched recipe's (Keras') or fine_tune's."""
    if config.lr != "auto":
        return float(config.lr)
    return MATCHED.head_lr if config.recipe == "matched" else FINE_TUNE["base_lr"]


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


def fine_tune(learn, recorder: RunRecorder, config: TrainConfig, lr: float, full_size_dls, start: ResumePoint) -> None:
    """``Learner.fine_tune``'s two phases and schedule, opened up because a run must resume mid-phase, resize
    between phases (``--progressive``) and unfreeze only the top stages (``--unfreeze``), which it cannot. The
    matched recipe keeps the phases and swaps the schedules: a constant LR with the body frozen, then one LR for
    every unfrozen layer on ``matched_schedule`` (``fit``: no one-cycle LR and no momentum cycling)."""
    matched = config.recipe == "matched"
    if start.phase == "frozen" and start.epoch < config.freeze_epochs:
        recorder.start_phase("frozen", start.epoch)
        learn.freeze()
        if matched:
            learn.fit(config.freeze_epochs, lr, start_epoch=start.epoch)
        else:  # fine_tune's frozen phase: one cycle peaking at the very end
            learn.fit_one_cycle(config.freeze_epochs, slice(lr), pct_start=0.99, start_epoch=start.epoch)
    if full_size_dls is not None:
        learn.dls = full_size_dls
    if config.epochs:
        first_epoch = start.epoch if start.phase == "unfrozen" else 0
        recorder.start_phase("unfrozen", first_epoch)
        if config.unfreeze:
            learn.freeze_to(-2)  # the last `unfreeze` stages and the head; early stages stay frozen
        else:
            learn.unfreeze()
        if matched:
            peak = lr * MATCHED.fine_tune_lr_factor
            schedule = ParamScheduler({"lr": matched_schedule(peak, config.epochs * len(learn.dls.train))})
            learn.fit(config.epochs, peak, cbs=schedule, start_epoch=first_epoch)
        else:
            base = lr / 2
            learn.fit_one_cycle(
                config.epochs,
                slice(base / config.lr_mult, base),
                pct_start=FINE_TUNE["pct_start"],
                div=FINE_TUNE["div"],
                start_epoch=first_epoch,
            )


def matched_schedule(peak: float, total_steps: int):
    """The matched recipe's unfrozen-phase LR as a function of the share of training done: Keras' ``CosineDecay``
    with warm-up (linear from peak/10 to peak, then cosine to 0), written with fastai's own schedulers."""
    warm = warmup_steps(total_steps, MATCHED.warmup) / total_steps
    return combine_scheds([warm, 1 - warm], [SchedLin(peak / 10, peak), SchedCos(peak, 0.0)])


def predict_eval_splits(learn, dataset: Dataset) -> tuple[np.ndarray, float]:
    """Sigmoid scores for every valid and test image (``EVAL_SPLITS`` order), and the seconds they took."""
    rows = dataset.rows(EVAL_SPLITS)
    frame = pd.DataFrame({"image": [str(dataset.root / r) for r in rows["image"]], "labels": ""})
    clock = Stopwatch()
    scores = learn.get_preds(dl=learn.dls.test_dl(frame))[0]  # no TTA: the served predictor has none
    return scores.float().numpy(), clock.seconds()


def main(argv: list[str] | None = None) -> int:
    return trainer_main(argv, build_parser(), make_config, train, KIND)


if __name__ == "__main__":
    sys.exit(main())
