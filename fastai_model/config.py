"""Training configuration: one dataclass with defaults, presets, saved whole into run.json."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from benchmarks.errors import BenchmarkError


@dataclass
class TrainConfig:
    backbone: str = "lite0"
    img_size: int = 224
    epochs: int = 5  # unfrozen epochs
    freeze_epochs: int = 1  # head-only epochs first (body frozen)
    lr: float | str = "auto"  # "auto" = lr_find's valley suggestion
    bs: int = 32
    wd: float = 0.01
    lr_mult: int = 100  # discriminative LRs: the body's earliest layers train lr_mult times slower than the head
    mixup: bool = False
    label_smoothing: float = 0.0
    progressive: bool = False  # frozen phase at 3/4 size, then full size
    tta: bool = False
    patience: int = 0  # EarlyStoppingCallback on valid_loss when > 0
    save_best: bool = False  # SaveModelCallback: keep the epoch with the lowest valid_loss
    grad_accum: int = 1  # accumulate gradients over this many batches
    item_tfm: str = "resize"  # "resize" keeps every labelled object in view; "rrc" = RandomResizedCrop
    seed: int = 0
    reproducible: bool = False  # set_seed(seed, reproducible=True): deterministic cuDNN, slower
    lr_find_iters: int = 100
    num_workers: int = 0  # DataLoader processes; 0 keeps both cores for the model on small CPUs
    preset: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, dict] = {
    # 2-core CPU, StampScenes default (2,000 train images): about 5 minutes end to end
    "quick": {"img_size": 160, "freeze_epochs": 1, "epochs": 2, "bs": 32, "lr_find_iters": 40},
    # a GPU: full resolution, longer schedule, the usual regularisers
    "full": {"img_size": 224, "freeze_epochs": 2, "epochs": 12, "bs": 64, "mixup": True, "tta": True, "save_best": True, "patience": 4},
}


def make_config(preset: str | None = None, **overrides) -> TrainConfig:
    """Defaults, then the preset, then the options the user set explicitly."""
    values: dict = {}
    if preset:
        if preset not in PRESETS:
            raise BenchmarkError(f"unknown preset '{preset}'; choose one of: {', '.join(PRESETS)}")
        values.update(PRESETS[preset], preset=preset)
    known = {f.name for f in fields(TrainConfig)}
    values.update({k: v for k, v in overrides.items() if v is not None and k in known})
    config = TrainConfig(**values)
    if config.lr != "auto":
        try:
            config.lr = float(config.lr)
        except ValueError:
            raise BenchmarkError(f"--lr {config.lr!r}: give a number such as 2e-3, or 'auto' for lr_find") from None
        if not 0 < config.lr < 1:
            raise BenchmarkError(f"--lr {config.lr}: must be between 0 and 1")
    for name in ("img_size", "bs", "grad_accum"):
        if getattr(config, name) < 1:
            raise BenchmarkError(f"--{name.replace('_', '-')} must be at least 1")
    if config.epochs < 0 or config.freeze_epochs < 0 or config.epochs + config.freeze_epochs == 0:
        raise BenchmarkError("--epochs and --freeze-epochs must be >= 0 and not both 0")
    if config.item_tfm not in ("resize", "rrc"):
        raise BenchmarkError(f"--item-tfm {config.item_tfm!r}: choose resize or rrc")
    return config
