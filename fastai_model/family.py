"""The fastai family, declared for the model registry (no framework is imported here)."""

from benchmarks.models.backbones import BACKBONES
from benchmarks.models.registry import Command, DemoStep, GridSupport, ModelFamily

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
        demo=(DemoStep("fastai, --preset quick (4-7 minutes on 2 CPU cores)", ("--preset", "quick")),),
    ),
)
