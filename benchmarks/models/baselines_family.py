"""The reference families every model must beat, declared for the registry: the label prior and the linear probe."""

from __future__ import annotations

from .registry import DemoStep, GridCommand, ModelFamily

FAMILIES = (
    ModelFamily(
        kind="prior",
        title="label prior",
        description="every image gets each label's training frequency: the AUC 0.5 floor",
        no_model_reason="the prior scores every image the same (label frequencies); there is nothing to run",
        grid=GridCommand(
            "benchmarks",
            ("baseline", "prior", "{dataset}", "--results", "{results}", "--skip-existing"),
            seeded=False,
            takes_backbone=False,
            takes_preset=False,
        ),
        bench=(),
        demo=(
            DemoStep(
                "label prior",
                "benchmarks",
                ("baseline", "prior", "{dataset}", "--results", "{results}", "--skip-existing"),
            ),
        ),
    ),
    ModelFamily(
        kind="linear_probe",
        title="linear probe",
        description="logistic regression per label on frozen ImageNet EfficientNet-Lite features",
        runtime="torch",
        predictor="benchmarks.models.baselines:LinearProbePredictor",
        backbones=("lite0", "lite1", "lite2"),
        grid=GridCommand(  # deterministic (L-BFGS, C chosen on valid): one cell per dataset
            "benchmarks",
            ("baseline", "linear-probe", "{dataset}", "--results", "{results}", "--skip-existing"),
            seeded=False,
            takes_preset=False,
        ),
        demo=(
            DemoStep(
                "linear probe on frozen lite0 features",
                "benchmarks",
                ("baseline", "linear-probe", "{dataset}", "--results", "{results}", "--skip-existing"),
            ),
        ),
        bench=(
            DemoStep(
                "linear probe (reused when done)",
                "benchmarks",
                ("baseline", "linear-probe", "{dataset}", "--results", "{results}", "--skip-existing"),
            ),
        ),
    ),
)
