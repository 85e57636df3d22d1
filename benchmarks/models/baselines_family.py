"""The reference families every model must beat, declared for the registry: the label prior and the linear probe."""

from __future__ import annotations

from .backbones import BACKBONES
from .registry import BAR, FLOOR, Command, DemoStep, GridSupport, ModelFamily
from .search_space import log_range

FAMILIES = (
    ModelFamily(
        kind="prior",
        title="label prior",
        description="every image gets each label's training frequency: the AUC 0.5 floor",
        no_model_reason="the prior scores every image the same (label frequencies); there is nothing to run",
        command=Command("benchmarks", ("baseline", "prior")),
        baseline=FLOOR,
        grid=GridSupport(seeded=False, takes_backbone=False, takes_preset=False),
        bench=(),
        demo=(DemoStep("label prior"),),
    ),
    ModelFamily(
        kind="linear_probe",
        title="linear probe",
        description="logistic regression per label on frozen ImageNet EfficientNet-Lite features",
        runtime="torch",
        predictor="benchmarks.models.baselines:LinearProbePredictor",
        command=Command("benchmarks", ("baseline", "linear-probe")),
        baseline=BAR,
        backbones=tuple(BACKBONES),
        # deterministic (L-BFGS, C chosen on valid): one cell per dataset
        grid=GridSupport(seeded=False, takes_preset=False),
        # tuned too, so "tuned fine-tuning vs the probe" compares equal efforts: its one knob, the inverse L2
        # strength (the untuned probe picks from baselines.PROBE_C_GRID, 1e-4 to 1, on valid)
        search_space=(log_range("c", 1e-4, 1e2, "logistic regression's C (inverse L2 strength), one for every label"),),
        demo=(DemoStep("linear probe on frozen lite0 features"),),
        bench=(DemoStep("linear probe (reused when done)", ("--skip-existing",)),),
    ),
)
