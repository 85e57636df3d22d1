"""The fastai family, declared for the model registry (no framework is imported here)."""

from benchmarks.models.backbones import BACKBONES
from benchmarks.models.registry import Command, DemoStep, GridSupport, ModelFamily
from benchmarks.models.search_space import WISE_FT, choice, int_range, log_range

# What `benchmarks tune` varies, as fastai names it (fine_tune's base_lr, freeze_epochs, lr_mult, wd, MixUp, label
# smoothing, the item transform). The ranges reach below and beyond the quick preset on purpose: small data wants
# lower LRs, more epochs and stronger augmentation than StampScenes' 2,000 images, and on 300 images fine_tune's
# default lr_mult (100) leaves the unfrozen stages too slow to move; keep-best still guards every trial.
SEARCH_SPACE = (
    log_range("lr", 1e-4, 1e-1, "fine_tune's base_lr (the unfrozen phase runs at half of it, one-cycle)"),
    int_range("epochs", 1, 8, "unfrozen epochs"),
    int_range("freeze-epochs", 0, 2, "head-only epochs first"),
    choice("unfreeze", 0, 3, 5, why="0: the whole body; N: its last N of 7 stages"),
    choice("lr-mult", 1, 10, 100, why="fine_tune's discriminative LRs: the earliest unfrozen layers at lr / lr-mult"),
    log_range("wd", 1e-4, 1e-1, "decoupled weight decay"),
    choice("mixup", False, True, why="fastai's MixUp callback"),
    choice("label-smoothing", 0.0, 0.1),
    choice("item-tfm", "resize", "rrc", why="rrc: RandomResizedCrop, the stronger augmentation"),
    choice("head-init", "probe", "random", why="probe: LP-FT"),
    WISE_FT,
)

FAMILIES = (
    ModelFamily(
        kind="fastai",
        title="fastai",
        description="fastai (PyTorch) fine-tuning of an ImageNet EfficientNet-Lite: DataBlock, vision_learner, "
        "fine_tune",
        runtime="torch",
        predictor="fastai_model.serving:FastaiPredictor",
        command=Command("fastai_model.train"),
        trainer=True,
        grid=GridSupport(data_parallel=True),  # fastai_model/distributed.py: one process per GPU through Accelerate
        backbones=tuple(BACKBONES),
        throughput="fastai_model.throughput",
        throughput_probes={"num_workers=0": (), "num_workers=1": ("--num-workers", "1")},
        search_space=SEARCH_SPACE,
        epoch_metric="roc_auc_score",  # RocAucMulti(average="macro") on valid, each epoch
        cross_validated_options={"no-keep-best": True},
        souper="fastai_model.soup",
        exporter="fastai_model.export",
        presets_from="fastai_model.config:PRESETS",
        unreachable_formats={
            fmt: "no maintained PyTorch-to-TensorFlow converter installs with the pinned stack (ai-edge-torch 0.7 "
            "would replace pydantic and typing_extensions and pull in transformers); export onnx"
            for fmt in ("tflite", "savedmodel", "tfjs")
        },
        demo=(DemoStep("fastai, --preset quick (4-7 minutes on 2 CPU cores)", ("--preset", "quick")),),
    ),
)
