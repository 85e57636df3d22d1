"""The options every trainer shares, so fastai and Keras take the same flags and refuse the same bad input.

Trainers add their framework's own options on top of ``CommonConfig``; presets are merged under the flags the
user typed (``make_config``), and every value is checked here once.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import ClassVar, TypeVar

from benchmarks.errors import BenchmarkError
from benchmarks.models.backbones import get_backbone

HEAD_INITS = ("probe", "random")
# The multi-label losses both trainers offer, with one definition each (tested equal across the frameworks):
# bce; focal (Lin et al. 2017) -(1-p_t)^γ log p_t without class balancing; asl, the asymmetric loss (Ridnik et al.,
# ICCV 2021) with its paper's defaults: γ- = 4 on negatives, whose probability is also shifted down by the clip
# margin m, γ+ = 1 on positives. Each is the mean over images × labels.
LOSSES = ("bce", "focal", "asl")
FOCAL_GAMMA = 2.0
ASL_GAMMA_NEG, ASL_GAMMA_POS, ASL_CLIP = 4.0, 1.0, 0.05
# --recipe. idiomatic (default): each framework trained as its own documentation teaches (fastai's fine_tune with
# lr_find, one-cycle and discriminative LRs; the Keras transfer-learning guide). matched: one recipe for both, so
# fastai − Keras measures the framework alone — see MatchedRecipe.
RECIPES = ("idiomatic", "matched")
# --precision, one vocabulary for both frameworks; each maps the words to its own mechanism (fastai's autocast
# callback, Keras' dtype policies). auto: fp16 on a GPU, bf16 on CPUs where the framework gains from it, else fp32.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class MatchedRecipe:
    """What ``--recipe matched`` fixes in both trainers. The head: global average pooling, dropout, one linear layer
    (LP-FT's head). AdamW with Keras' defaults (fastai's Adam takes the same betas and eps). Frozen phase: a constant
    LR. Unfrozen phase: one LR for every trainable layer (no discriminative LRs), linear warm-up from a tenth of the
    peak over the first ``warmup`` share of steps, then cosine decay to 0 (Keras' ``CosineDecay`` with warm-up;
    fastai's ``combine_scheds`` of ``SchedLin`` and ``SchedCos``). Every BatchNorm layer frozen whole (statistics,
    scale and shift), as Keras' guide does. Augmentations: flip, rotation ±15°, zoom-in up to 10 %, brightness and
    contrast ±0.2 on every image, nothing else (no warp in fastai, no translation in Keras). The same loss, batch
    size, image size and epochs from the shared options; fp32 on CPUs and fp16 mixed precision on GPUs in both."""

    head_lr: float = 1e-3
    fine_tune_lr_factor: float = 0.1
    warmup: float = 0.1
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-7
    dropout: float = 0.2
    rotate_degrees: float = 15.0
    zoom: float = 0.1
    lighting: float = 0.2


MATCHED = MatchedRecipe()


def apply_matched_recipe(config, explicit: Mapping[str, object], **fixed) -> None:
    """``--recipe matched`` fixes these framework options in both trainers. A preset's own value gives way (the
    preset chose it for the idiomatic recipe); a value the user typed (``explicit``: the flags given, None = not
    given) is refused, not ignored."""
    if config.recipe != "matched":
        return
    for name, value in fixed.items():
        if getattr(config, name) == value:
            continue
        flag = "--" + name.replace("_", "-")
        if explicit.get(name) is not None:
            raise BenchmarkError(
                f"{flag} {getattr(config, name)}: --recipe matched sets it to {value} in both frameworks; drop {flag} "
                "or use --recipe idiomatic"
            )
        setattr(config, name, value)


def warmup_steps(total_steps: int, share: float) -> int:
    """Steps of linear warm-up at the start of the unfrozen phase, the same count in both frameworks."""
    return math.ceil(total_steps * share)


@dataclass
class CommonConfig:
    backbone: str = "lite0"
    img_size: int | None = None  # None: the backbone's own input size (make_config fills it in)
    epochs: int = 5  # epochs with the body (partly) unfrozen
    freeze_epochs: int = 1  # head-only epochs first (body frozen)
    lr: float | str = "auto"
    bs: int = 32
    wd: float = 0.01
    mixup: bool = False
    label_smoothing: float = 0.0
    loss: str = "bce"  # bce, focal or asl (see LOSSES)
    unfreeze: int = 0  # phase 2: 0 = the whole body, N = only its last N of 7 stages (+ head conv)
    patience: int = 0  # early stopping when > 0: on valid macro AUC (valid loss if a label is unrankable on valid)
    seed: int = 0
    head_init: str = "probe"  # LP-FT: the head starts from the linear probe's fit; "random": the framework's own init
    keep_best: bool = True  # end with the best of {the starting model, each epoch} by valid macro AUC
    keep_best_confidence: float = 0.95  # an epoch replaces the start only if ahead in this share of paired resamples
    wise_ft: float = 1.0  # the run ends on start + wise_ft × (trained − start) weights (WiSE-FT); 1: the trained ones
    recipe: str = "idiomatic"  # or "matched": one recipe for both frameworks (see MatchedRecipe)
    precision: str = "auto"  # see PRECISIONS
    preset: str = ""
    named_lrs: ClassVar[tuple[str, ...]] = ("auto",)  # the words --lr takes besides a number

    def to_dict(self) -> dict:
        return asdict(self)


Config = TypeVar("Config", bound=CommonConfig)
# Presets start fine-tuning at once (no frozen epochs) because LP-FT's head is already fitted; a fresh random head
# gets this many head-only epochs first unless --freeze-epochs says otherwise.
RANDOM_HEAD_FREEZE_EPOCHS = 2
# Below this many training images a study starts from the "small" preset and a "quick" run says so: "quick" was
# chosen on StampScenes' 2,000, "small" on 300-image development draws (docs/results.md, 2026-12-07, second session).
SMALL_DATA_TRAIN_IMAGES = 1000
# The "small" presets' keep-best confidence for their WiSE-FT blend: on the development draws the most cautious of
# the confidences with the best mean test gain (0, 0.5 and 0.8 kept the same blends; 0.95 sent gaining ones back to
# the start). With quick's too-high LR instead, the blends 0.8 let through cost at most 0.004 on test.
SMALL_DATA_GUARD = {"keep_best_confidence": 0.8}


def preset_for(train_images: int, presets: Collection[str]) -> str:
    """The preset a family's study starts from on a dataset this size: "small" where the family has one and the
    training split is small, else "quick"."""
    return "small" if train_images < SMALL_DATA_TRAIN_IMAGES and "small" in presets else "quick"


def small_data_note(config: CommonConfig, train_images: int) -> str | None:
    """One line for a run that uses "quick" on a small training split, where "small" fits better."""
    if config.preset != "quick" or train_images >= SMALL_DATA_TRAIN_IMAGES:
        return None
    return (
        f"note: {train_images} training images: --preset small was chosen for datasets this size (under "
        f"{SMALL_DATA_TRAIN_IMAGES}); quick was chosen on 2,000 (docs/trainers.md, 'Presets')"
    )


def make_config(cls: type[Config], presets: dict[str, dict], preset: str | None = None, **overrides) -> Config:
    """Defaults, then the preset, then the options the user set explicitly; every value checked."""
    values: dict = {}
    if preset:
        if preset not in presets:
            raise BenchmarkError(f"unknown preset '{preset}'; choose one of: {', '.join(presets)}")
        values.update(presets[preset], preset=preset)
    known = {f.name for f in fields(cls)}
    explicit = {k: v for k, v in overrides.items() if v is not None and k in known}
    values.update(explicit)
    if values.get("head_init") == "random" and values.get("freeze_epochs") == 0 and "freeze_epochs" not in explicit:
        values["freeze_epochs"] = RANDOM_HEAD_FREEZE_EPOCHS  # the preset counts on the probe's head
    if "lr" not in explicit and (values.get("recipe") == "matched" or values.get("head_init") == "random"):
        values.pop("lr", None)  # a preset's LR was tuned for LP-FT's idiomatic recipe; the others keep "auto"
    if values.get("head_init") == "random" and "wise_ft" not in explicit:
        values.pop("wise_ft", None)  # a preset's WiSE-FT blends with the probe's head, which a random head lacks
    config = cls(**values)
    if config.img_size is None:
        config.img_size = get_backbone(config.backbone).input_size  # the size its weights were trained at
    if config.lr not in cls.named_lrs:
        try:
            config.lr = float(config.lr)
        except ValueError:
            words = " or ".join(repr(word) for word in cls.named_lrs)
            raise BenchmarkError(f"--lr {config.lr!r}: give a number such as 2e-3, or {words}") from None
        if not 0 < config.lr < 1:
            raise BenchmarkError(f"--lr {config.lr}: must be between 0 and 1")
    for name in ("img_size", "bs"):
        if getattr(config, name) < 1:
            raise BenchmarkError(f"--{name.replace('_', '-')} must be at least 1")
    if config.img_size < 32:
        raise BenchmarkError(f"--img-size {config.img_size}: EfficientNet needs at least 32 px")
    if config.epochs < 0 or config.freeze_epochs < 0 or config.epochs + config.freeze_epochs == 0:
        raise BenchmarkError("--epochs and --freeze-epochs must be >= 0 and not both 0")
    if not 0 <= config.unfreeze <= 7:
        raise BenchmarkError(f"--unfreeze {config.unfreeze}: 0 (whole body) to 7 stages")
    if config.head_init not in HEAD_INITS:
        raise BenchmarkError(f"--head-init {config.head_init!r}: choose {' or '.join(HEAD_INITS)}")
    if not 0 <= config.keep_best_confidence < 1:
        raise BenchmarkError(
            f"--keep-best-confidence {config.keep_best_confidence}: a share in [0, 1), e.g. 0.95; 0 keeps the epoch "
            "with the highest valid macro AUC however small its gain"
        )
    if not 0 < config.wise_ft <= 1:
        raise BenchmarkError(
            f"--wise-ft {config.wise_ft}: the fine-tuned weights' share in (0, 1], e.g. 0.5; 1 keeps them as trained"
        )
    if config.wise_ft < 1 and config.head_init != "probe":
        raise BenchmarkError(
            f"--wise-ft {config.wise_ft} with --head-init {config.head_init}: WiSE-FT blends with the start, which a "
            "random head makes no model; use --head-init probe or leave --wise-ft out"
        )
    if config.recipe not in RECIPES:
        raise BenchmarkError(f"--recipe {config.recipe!r}: choose {' or '.join(RECIPES)}")
    if config.precision not in PRECISIONS:
        raise BenchmarkError(f"--precision {config.precision!r}: choose one of {', '.join(PRECISIONS)}")
    if config.loss not in LOSSES:
        raise BenchmarkError(f"--loss {config.loss!r}: choose one of {', '.join(LOSSES)}")
    if not 0 <= config.label_smoothing < 1:
        raise BenchmarkError(f"--label-smoothing {config.label_smoothing}: must be in [0, 1)")
    return config


def add_common_arguments(parser: argparse.ArgumentParser, presets: dict[str, dict]) -> None:
    """The flags both trainers take, with the same names and meanings."""
    summary = "; ".join(f"{name}: {', '.join(f'{k}={v}' for k, v in p.items())}" for name, p in presets.items())
    parser.add_argument("--dataset", type=Path, help="dataset folder (labels.csv + images/)")
    parser.add_argument("--results", type=Path, default="results", help="results folder (default results/)")
    parser.add_argument("--preset", choices=sorted(presets), help=f"settings bundles ({summary}); explicit flags win")
    parser.add_argument("--backbone", help="lite0 (default), lite1 or lite2")
    parser.add_argument(
        "--img-size", type=int, help="training image size (default: the backbone's: lite0 224, lite1 240, lite2 260)"
    )
    parser.add_argument("--epochs", type=int, help="epochs after unfreezing the body")
    parser.add_argument("--freeze-epochs", type=int, help="head-only epochs first")
    parser.add_argument("--lr", help="peak learning rate, or auto (default: see the description above)")
    parser.add_argument("--bs", type=int, help="batch size (default 32)")
    parser.add_argument("--wd", type=float, help="weight decay (default 0.01)")
    parser.add_argument("--mixup", action="store_true", default=None, help="MixUp augmentation")
    parser.add_argument("--label-smoothing", type=float, help="label smoothing of the targets, e.g. 0.1")
    parser.add_argument(
        "--loss",
        choices=LOSSES,
        help="bce (default); focal: focal loss, gamma 2; asl: asymmetric loss for multi-label (Ridnik et al. 2021)",
    )
    parser.add_argument(
        "--unfreeze", type=int, help="phase 2: 0 = whole body (default), N = only its last N of 7 stages"
    )
    parser.add_argument(
        "--patience",
        type=int,
        help="early stopping: end a phase after this many epochs without a better valid macro AUC (valid loss if "
        "a label has no positive or no negative in valid)",
    )
    parser.add_argument("--seed", type=int, help="random seed (default 0)")
    parser.add_argument(
        "--head-init",
        choices=HEAD_INITS,
        help="probe (default): LP-FT — a linear head fitted like the linear probe on cached frozen features, then "
        "fine-tuning starts from it; random: the framework's own head, freshly initialised (with "
        f"{RANDOM_HEAD_FREEZE_EPOCHS} head-only epochs first where the preset has none)",
    )
    parser.add_argument(
        "--keep-best",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="end with the weights that scored best on valid (macro AUC) among the starting model and every epoch, "
        "so fine-tuning never ends below its own start (default on; --no-keep-best keeps the last epoch)",
    )
    parser.add_argument(
        "--keep-best-confidence",
        type=float,
        help="keep-best trusts an epoch over the starting model only when it is ahead in this share of paired "
        "bootstrap resamples of the valid images (default 0.95; 0: the highest valid macro AUC, noise or not)",
    )
    parser.add_argument(
        "--wise-ft",
        type=float,
        help="end on the starting weights moved this share of the way to the fine-tuned ones (WiSE-FT, Wortsman et "
        "al. 2022: robust to images unlike the training ones); default 1, the fine-tuned weights",
    )
    parser.add_argument(
        "--recipe",
        choices=RECIPES,
        help="idiomatic (default): each framework as its own documentation teaches; matched: the same head, "
        "optimizer, LR schedule, augmentations, loss and precision in fastai and Keras, so their difference "
        "measures the framework alone (docs/trainers.md)",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="auto (default): fp16 on a GPU, bf16 on CPUs where the framework gains from it (fastai: native bf16; "
        "Keras: AMX), else fp32",
    )
    parser.add_argument("--resume", type=Path, help="continue an interrupted run folder")
    parser.add_argument(
        "--skip-existing",
        action="store_true",
        help="do nothing if a finished run with these settings exists for this dataset",
    )


def throughput_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The flags both trainers' throughput probes take (each trainer against its framework's plain loop)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--dataset", type=Path, required=True, help="dataset folder; its train split is read")
    parser.add_argument("--img-size", type=int, default=160, help="training image size in px (default 160)")
    parser.add_argument("--bs", type=int, default=32, help="batch size (default 32)")
    parser.add_argument(
        "--precision", default="auto", choices=PRECISIONS, help="as the trainer's --precision (default auto)"
    )
    return parser
