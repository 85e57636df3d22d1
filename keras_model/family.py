"""The Keras family, declared for the model registry (no framework is imported here)."""

from benchmarks.models.backbones import BACKBONES
from benchmarks.models.registry import Command, DemoStep, GridSupport, ModelFamily

FAMILIES = (
    ModelFamily(
        kind="keras",
        title="Keras",
        description="Keras 3 fine-tuning of the same ImageNet EfficientNet-Lite, ported from PyTorch (TensorFlow "
        "backend; --backend jax or torch runs the same model and recipe on the others)",
        runtime="tensorflow",
        predictor="keras_model.serving:KerasPredictor",
        command=Command("keras_model.train"),
        trainer=True,
        grid=GridSupport(),
        backbones=tuple(BACKBONES),
        throughput="keras_model.throughput",
        throughput_probes={"tf.data": ()},
        demo=(DemoStep("Keras, --preset quick (4-10 minutes on 2 CPU cores)", ("--preset", "quick")),),
    ),
)
