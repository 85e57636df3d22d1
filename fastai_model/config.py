"""fastai training configuration: the shared options plus fastai's own, presets and the CLI that sets them,
saved whole into run.json."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import ClassVar

from benchmarks.errors import BenchmarkError
from benchmarks.training.options import SMALL_DATA_GUARD, CommonConfig, add_common_arguments, apply_matched_recipe
from benchmarks.training.options import make_config as make_common_config


@dataclass
class TrainConfig(CommonConfig):
    train_bn: bool = True  # fastai's default: BatchNorm layers train even in frozen groups
    lr_mult: int = 100  # discriminative LRs: the body's earliest layers train lr_mult times slower than the head
    progressive: bool = False  # frozen phase at 3/4 size, then full size
    tta: bool = False  # refused (see make_config): the served predictor has no TTA, and served must equal scored
    grad_accum: int = 1  # accumulate gradients over this many batches
    item_tfm: str = "resize"  # "resize" keeps every labelled object in view; "rrc" = RandomResizedCrop
    reproducible: bool = False  # set_seed(seed, reproducible=True): deterministic cuDNN, slower
    lr_find_iters: int = 100
    num_workers: int | None = None  # DataLoader processes; None: none on a CPU (its cores train), a few with a GPU
    named_lrs: ClassVar[tuple[str, ...]] = ("auto", "find")  # find: lr_find's valley, whatever the head


# Presets, chosen on StampScenes' valid split with the grids in benchmarks/grids/ (figures: docs/results.md). quick:
# no frozen epochs (LP-FT's head is already fitted), then only the last 3 stages fine-tuned with frozen BatchNorm (a
# cheap backward pass, less overfitting to the training images), at the backbone's own image size, lr 3.2e-2
# (fine_tune halves it for the unfrozen phase; tuned for LP-FT's idiomatic recipe only). full: quick's recipe for 8
# epochs, keep-best choosing the epoch, no early stopping (one-cycle's high-LR epochs dip on valid).
QUICK = {
    "freeze_epochs": 0,
    "epochs": 2,
    "unfreeze": 3,
    "train_bn": False,
    "bs": 32,
    "lr_find_iters": 30,
    "lr": 3.2e-2,
}
# small (under 1,000 training images): a tenth of quick's LR (quick's overshoots on 300 images) for 6 epochs, the
# unfrozen stages at a third of the head's LR instead of a tenth (lr_mult 10: fine_tune's 100 leaves them too slow to
# move at this LR), ending on the WiSE-FT blend of the LP-FT start and the last epoch, which keep-best still judges
# against the start (at SMALL_DATA_GUARD's confidence). Chosen on three 450-image development draws (build-default
# --size 450 --seed 6, 7 and 8; 3 seeds each), never on StampScenes-450 (seed 5), where it is reported
# (docs/results.md, 2026-12-07, second and third sessions).
PRESETS: dict[str, dict] = {
    "quick": QUICK,
    "full": {**QUICK, "epochs": 8},
    "small": {**QUICK, "epochs": 6, "lr": 3.2e-3, "lr_mult": 10, "wise_ft": 0.5, **SMALL_DATA_GUARD},
}


def make_config(preset: str | None = None, **overrides) -> TrainConfig:
    config = make_common_config(TrainConfig, PRESETS, preset, **overrides)
    if config.tta:
        raise BenchmarkError(
            "--tta: not offered: fastai's TTA averages random augmentations the served model cannot repeat, so the "
            "leaderboard would score a model nobody serves; train without it"
        )
    if config.grad_accum < 1:
        raise BenchmarkError("--grad-accum must be at least 1")
    if config.item_tfm not in ("resize", "rrc"):
        raise BenchmarkError(f"--item-tfm {config.item_tfm!r}: choose resize or rrc")
    apply_matched_recipe(config, overrides, progressive=False, item_tfm="resize", lr_mult=100, grad_accum=1)
    if config.recipe == "matched" and config.lr == "find":
        raise BenchmarkError("--lr find: Keras has no lr_find, so --recipe matched takes a number or auto (1e-3)")
    if config.recipe == "matched":
        config.train_bn = False  # every BatchNorm layer frozen whole, as in Keras
    if config.num_workers is None:  # resolved here, so run.json records the number that ran (0 on a CPU, as before)
        config.num_workers = default_loader_workers()
    return config


def default_loader_workers() -> int:
    """No worker processes on a CPU, whose few cores are better spent on the model than on decoding beside it; with a
    GPU, up to 8 processes decode and augment while the GPU trains (one process cannot keep it busy)."""
    import torch

    return min(8, max((os.cpu_count() or 1) - 1, 0)) if torch.cuda.is_available() else 0


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
    parser.add_argument("--lr-find-iters", type=int, help="lr_find iterations (default 100)")
    parser.add_argument("--reproducible", action="store_true", default=None, help="set_seed(reproducible=True)")
    parser.add_argument(
        "--num-workers",
        type=int,
        help="DataLoader worker processes that decode and augment images (default: 0 on a CPU, whose cores train; "
        "up to 8 with a GPU)",
    )
    return parser
