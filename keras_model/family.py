"""The Keras family, declared for the model registry (no framework is imported here)."""

from benchmarks.models.registry import DemoStep, GridCommand, ModelFamily

FAMILIES = (
    ModelFamily(
        kind="keras",
        title="Keras",
        description="Keras 3 (TensorFlow) fine-tuning of the same ImageNet EfficientNet-Lite, ported from PyTorch",
        runtime="tensorflow",
        predictor="keras_model.serving:KerasPredictor",
        trainer="keras_model.train",
        grid=GridCommand("keras_model.train", ("--dataset", "{dataset}", "--results", "{results}", "--skip-existing")),
        backbones=("lite0", "lite1", "lite2"),
        throughput="keras_model.throughput",
        throughput_probes={"tf.data": ()},
        demo=(
            DemoStep(
                "Keras, --preset quick (4-10 minutes on 2 CPU cores)",
                "keras_model.train",
                ("--dataset", "{dataset}", "--results", "{results}", "--preset", "quick", "--skip-existing"),
            ),
        ),
    ),
)
