"""What a study is (the family, its space, what is held fixed, the seed) and what it may spend (its budget).

Two commands with the same settings are the same study: its folder name carries a digest of them, so running the
command again resumes it (more trials included), and changing any setting starts a study of its own.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.data.dataset import Dataset
from benchmarks.errors import BenchmarkError
from benchmarks.models.registry import ModelFamily
from benchmarks.runner.spec import Cell
from benchmarks.training.options import SMALL_DATA_TRAIN_IMAGES, preset_for

SAMPLERS = ("tpe", "random")


@dataclass(frozen=True)
class Budget:
    """The same for every family of a comparison: ``trials`` finished trials, or ``seconds`` of the study's wall
    time if that comes first (running trials finish; no new one starts)."""

    trials: int
    seconds: float | None = None

    def describe(self) -> str:
        if self.seconds is None:
            return f"{self.trials} trials"
        return f"{self.trials} trials or {self.seconds:g} s of wall time, whichever comes first"

    def spent(self, finished: int, seconds: float) -> bool:
        return finished >= self.trials or (self.seconds is not None and seconds >= self.seconds)

    def pace(self, trial_seconds: list[float], spent: float, parallel: int = 1) -> str | None:
        """What is left at the pace so far, said after every trial: a 16-trial study on a few thousand images runs
        for hours on a laptop (None once the budget is spent)."""
        left = self.trials - len(trial_seconds)
        if left <= 0 or not trial_seconds or self.spent(len(trial_seconds), spent):
            return None
        mean = sum(trial_seconds) / len(trial_seconds)
        eta = mean * -(-left // parallel)
        trials = f"{left} trial{'s' if left > 1 else ''} to go"
        if self.seconds is not None and self.seconds - spent < eta:
            return f"{trials}, but the budget's wall time ends in {_duration(self.seconds - spent)}"
        return f"{trials}: about {_duration(eta)} more at the mean {_duration(mean)} per trial so far (pruned: shorter)"


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 1:
        return f"{seconds:.0f} s"
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def selection_of(settings: dict) -> str:
    """ "valid", "3-fold CV" or "3-fold CV by instance" from a study's recorded settings: studies compare only with
    studies that chose the same way."""
    folds = int(settings.get("folds", 1))
    if folds < 2:
        return "valid"
    return f"{folds}-fold CV" + (" by instance" if settings.get("group_folds") else "")


@dataclass(frozen=True)
class StudySettings:
    dataset: Dataset
    family: ModelFamily
    seed: int = 0
    backbone: str | None = None
    preset: str | None = None  # what the knobs outside the space start from (the trainers' quick preset)
    img_size: int | None = None
    fixed: dict = field(default_factory=dict)  # knobs held at one value (``--fix``)
    sampler: str = "tpe"
    prune: bool = True
    cpus: float = 1  # threads per trial: part of the study, because float sums depend on them
    folds: int = 1  # 2+: each trial trains on K folds of train + valid and scores their mean valid (``--folds``)
    group_folds: bool = False  # folds keep each object instance in one fold (``--group-folds``)
    fold_roots: tuple[Path, ...] = ()  # the fold datasets, once written (not part of the study's identity)

    @property
    def knobs(self):
        return [knob for knob in self.family.search_space if knob.option not in self.fixed]

    @property
    def start(self) -> dict:
        """Trial 0's values: what the preset does for every knob the study varies (empty: no start trial)."""
        values = {**self.family.start_values(self.preset), **self.fixed}
        return {k.option: values[k.option] for k in self.knobs if k.option in values and k.applies(values)}

    def identity(self) -> dict:
        """Everything that changes what a trial does or which trial comes next (not the budget, not the executor)."""
        return {
            "dataset_fingerprint": self.dataset.fingerprint,
            "family": self.family.kind,
            "backbone": self.backbone,
            "preset": self.preset,
            "img_size": self.img_size,
            "seed": self.seed,
            "fixed": self.fixed,
            "space": [knob.describe() for knob in self.knobs],
            "sampler": self.sampler,
            "prune": self.prune,
            "cpus": self.cpus,
            **({"folds": self.folds} if self.folds > 1 else {}),  # absent for 1: older studies keep their names
            **({"group_folds": True} if self.group_folds else {}),
            **({"start": self.start} if self.start else {}),
        }

    @property
    def selection(self) -> str:
        """How a trial is scored, said wherever the chosen run is: on valid, or by which cross-validation."""
        return selection_of(self.identity())

    @property
    def name(self) -> str:
        digest = hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:6]
        parts = [self.dataset.name, self.family.kind, self.backbone or "", f"seed{self.seed}", digest]
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(p for p in parts if p))

    def cell(self, params: dict, dataset_root: Path | None = None) -> Cell:
        """The trial as a grid cell: the family's command with the fixed and proposed knobs as flags (on a fold's
        dataset, or the dataset's own split; a cross-validated study's runs all take the family's
        ``cross_validated_options``)."""
        support = self.family.grid
        options = {**({"img-size": self.img_size} if self.img_size else {}), **self.fixed, **params}
        if self.folds > 1:
            options.update(self.family.cross_validated_options)
        return Cell(
            dataset_root or self.dataset.root,
            self.family.kind,
            support,
            self.backbone if support.takes_backbone else None,
            self.preset if support.takes_preset else None,
            options,
            self.seed if support.seeded else None,
            self.cpus,
            0,
        )

    def fold_cells(self, params: dict) -> tuple[Cell, ...]:
        """A cross-validated trial: one cell per fold dataset (empty for a study that chooses on valid)."""
        return tuple(self.cell(params, root) for root in self.fold_roots)


def default_preset(family: ModelFamily, dataset: Dataset) -> str | None:
    """The preset a study starts from when --preset is not given: "small" on a small training split (its trial 0 is
    then the recipe chosen on small development draws, not StampScenes' "quick"), else "quick"; None for a family
    without presets. Says which, and why, when it is "small"."""
    if not family.grid.takes_preset:
        return None
    train_images = len(dataset.rows("train"))
    preset = preset_for(train_images, family.presets())
    if preset == "small":
        print(
            f"preset: small ({train_images} training images, under {SMALL_DATA_TRAIN_IMAGES}; --preset quick starts "
            "from StampScenes' preset instead)"
        )
    return preset


def check_settings(family: ModelFamily, backbone: str | None, preset: str | None, sampler: str) -> None:
    """Refuse, in one line each, what this family cannot tune."""
    if not family.search_space or family.grid is None:
        raise BenchmarkError(f"--family {family.kind}: declares no search space, so it cannot be tuned")
    if backbone and (not family.grid.takes_backbone or backbone not in family.backbones):
        choices = ", ".join(family.backbones) or "none"
        raise BenchmarkError(f"--backbone {backbone}: {family.kind} takes one of: {choices}")
    if preset and not family.grid.takes_preset:
        raise BenchmarkError(f"--preset {preset}: {family.kind} has no presets; drop --preset")
    if preset and family.presets() and preset not in family.presets():
        raise BenchmarkError(f"--preset {preset}: {family.kind} has the presets {', '.join(family.presets())}")
    if sampler not in SAMPLERS:
        raise BenchmarkError(f"--sampler {sampler}: choose {' or '.join(SAMPLERS)}")


def study_folder(results: Path, settings: StudySettings) -> Path:
    return results / "tuning" / settings.name
