"""The Teachable Machine replica family, declared for the model registry (no framework is imported here)."""

from benchmarks.models.registry import Command, DemoStep, GridSupport, ModelFamily

FAMILIES = (
    ModelFamily(
        kind="teachable_machine_replica",
        title="TM replica",
        description="Teachable Machine's network and recipe (frozen MobileNetV2-0.35 + Dense head), trained locally",
        runtime="tensorflow",
        predictor="tm_replica.serving:ReplicaPredictor",
        command=Command("tm_replica"),
        grid=GridSupport(takes_backbone=False, takes_preset=False),
        exporter="tm_replica.export",
        unreachable_formats={
            "tfjs": "the same reason as for Keras runs: tensorflowjs requires TensorFlow 2.19 and "
            "numpy < 2.2; Teachable Machine's own TF.js export is what tm-eval reads"
        },  # fmt: skip
        demo=(DemoStep("Teachable Machine replica: TM's network and recipe, trained locally (about 1 minute)"),),
        bench=tuple(DemoStep(f"TM replica, {head} head", ("--head", head)) for head in ("softmax", "sigmoid")),
    ),
)
