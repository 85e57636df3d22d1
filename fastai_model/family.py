"""The fastai family, declared for the model registry (no framework is imported here)."""

from benchmarks.models.registry import DemoStep, GridCommand, ModelFamily

FAMILIES = (
    ModelFamily(
        kind="fastai",
        title="fastai",
        description="fastai (PyTorch) fine-tuning of an ImageNet EfficientNet-Lite: DataBlock, vision_learner, "
        "fine_tune",
        runtime="torch",
        predictor="fastai_model.serving:FastaiPredictor",
        trainer="fastai_model.train",
        grid=GridCommand(
            "fastai_model.train",
            ("--dataset", "{dataset}", "--results", "{results}", "--skip-existing"),
            data_parallel=True,  # fastai_model/distributed.py: one process per GPU through Accelerate
        ),
        backbones=("lite0", "lite1", "lite2"),
        throughput="fastai_model.throughput",
        throughput_probes={"num_workers=0": (), "num_workers=1": ("--num-workers", "1")},
        demo=(
            DemoStep(
                "fastai, --preset quick (4-7 minutes on 2 CPU cores)",
                "fastai_model.train",
                ("--dataset", "{dataset}", "--results", "{results}", "--preset", "quick", "--skip-existing"),
            ),
        ),
    ),
)
