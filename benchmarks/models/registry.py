"""The model-family registry: every kind of run the suite knows, declared by the package that makes it.

A family package (``fastai_model``, ``keras_model``, ...) defines ``FAMILIES`` in its ``family.py``; this module
lists those packages once (``FAMILY_MODULES``) and everything above the core — the API, the dashboard, the
benchmark tools, ``make demo`` — iterates :func:`families` instead of naming kinds. Declaring a family imports no
framework: predictors and trainers are reached through the module names the family gives for itself.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from benchmarks.errors import BenchmarkError

from .search_space import Knob

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from benchmarks.evaluation.results import Run

# The one place that names the family packages (the registry's own discovery): a new family adds one line.
FAMILY_MODULES = (
    "benchmarks.models.baselines_family",
    "fastai_model.family",
    "keras_model.family",
    "tm_replica.family",
    "cloud_baselines.family",
)


@runtime_checkable
class Predictor(Protocol):
    """What every saved model offers: its labels, and sigmoid-style scores for a batch of decoded images."""

    labels: list[str]

    def predict(self, images: list[Image.Image]) -> np.ndarray:  # (images, labels), each in [0, 1]
        ...


@dataclass(frozen=True)
class Command:
    """How a family's runs are made. Every family's CLI takes one convention: ``python -m MODULE [SUBCOMMAND ...]
    --dataset DIR --results DIR [options]``, and ``--skip-existing`` (do nothing if a finished run with these
    settings exists); commands are built here, never spelled out as argv strings."""

    module: str
    subcommand: tuple[str, ...] = ()

    def argv(self, dataset, results, *options: str) -> list[str]:
        """``[module, ...]`` for ``python -m``."""
        return [self.module, *self.subcommand, "--dataset", str(dataset), "--results", str(results), *options]


@dataclass(frozen=True)
class DemoStep:
    """One step of ``make demo`` (or ``make bench``): the family's command with these options."""

    title: str
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class GridSupport:
    """How a benchmark grid runs one cell of this family: its command with ``--skip-existing``, then ``--seed`` /
    ``--backbone`` / ``--preset`` where the family takes them, then the cell's options as flags."""

    seeded: bool = True  # False: the result does not depend on a seed, so one cell per dataset (not per seed)
    takes_backbone: bool = True
    takes_preset: bool = True
    data_parallel: bool = False  # True: a cell given 2+ GPUs trains on all of them, one process per GPU (torchrun)


# What a baseline family is to the others (``ModelFamily.baseline``)
FLOOR = "floor"  # scores every image the same: its ROC curves are the diagonal, nothing to compare curves with
BAR = "bar"  # the bar every model must clear: comparisons and summaries are made against it


@dataclass(frozen=True)
class ModelFamily:
    """One kind of run. ``predictor`` is ``"module:Class"`` (the class takes a run folder) for families that keep
    a model; ``has_model`` narrows that per run (an adapter run from batch predictions keeps none)."""

    kind: str
    title: str
    description: str
    runtime: str | None = None  # "torch" or "tensorflow": which native stack loading a model pulls in
    predictor: str | None = None
    has_model: Callable[[Run], bool] | None = None
    command: Command | None = None  # the CLI that writes this family's runs
    trainer: bool = False  # its command takes the shared trainer options (the dashboard's Train page)
    baseline: str | None = None  # FLOOR or BAR for the reference runs; None for a model
    backbones: tuple[str, ...] = ()
    throughput: str | None = None  # module whose CLI measures training images/s against a plain loop
    throughput_probes: dict[str, tuple[str, ...]] = field(default_factory=dict)  # variant name -> extra flags
    demo: tuple[DemoStep, ...] = ()  # what ``make demo`` runs for this family
    bench: tuple[DemoStep, ...] | None = None  # what ``make bench`` times (default: the demo steps, run afresh)
    no_model_reason: str = "this kind of run keeps no model"
    grid: GridSupport | None = None  # how a benchmark grid runs one cell of this family (None: not in grids)
    search_space: tuple[Knob, ...] = ()  # what ``benchmarks tune`` varies (empty: the family is not tunable)
    epoch_metric: str | None = None  # the history row's valid macro AUC per epoch, which the tuner's pruner reads
    # options every run of a cross-validated study takes (``tune --folds``): the folds choose what keep-best would
    # have chosen on one small valid split, so the trainers' keep-best is turned off there
    cross_validated_options: dict = field(default_factory=dict)
    # ``python -m tools.export``: the module that writes this family's models in exchange formats (its FORMATS,
    # export_model and exchange_pixels), and the formats it cannot reach, each with the reason
    exporter: str | None = None
    unreachable_formats: dict[str, str] = field(default_factory=dict)
    presets_from: str | None = None  # "module:NAME" of the dict of its presets (a framework-free config module)
    # ``benchmarks tune --soup``: the module whose CLI averages this family's runs into one (a greedy model soup)
    souper: str | None = None

    def demo_commands(self, dataset, results) -> list[tuple[str, list[str]]]:
        """``make demo``'s steps as (title, argv for ``python -m``); each skips itself when its run exists."""
        return [(s.title, self.command.argv(dataset, results, *s.options, "--skip-existing")) for s in self.demo]

    def bench_commands(self, dataset, results) -> list[tuple[str, list[str]]]:
        """``make bench``'s steps, run afresh (they are timed)."""
        steps = self.demo if self.bench is None else self.bench
        return [(s.title, self.command.argv(dataset, results, *s.options)) for s in steps]

    def grid_argv(self, dataset, results) -> list[str]:
        return self.command.argv(dataset, results, "--skip-existing")

    def presets(self) -> tuple[str, ...]:
        """The preset names the family's command takes (none where it declares none)."""
        if self.presets_from is None:
            return ()
        module, name = self.presets_from.split(":")
        return tuple(sorted(getattr(importlib.import_module(module), name)))

    def start_values(self, preset: str | None) -> dict:
        """What the family's command does with ``preset`` for each knob of its space: a study's trial 0, so no study
        can choose a configuration worse on valid than the default it set out to improve. Read from the presets
        module's ``make_config`` (the command's own; its ``KNOB_VALUES`` for a knob no config field is named after);
        a knob whose default is not in its range (lr "auto") is left out, and a family without presets has no start."""
        if self.presets_from is None:
            return {}
        module = importlib.import_module(self.presets_from.split(":")[0])
        config, readers = module.make_config(preset), getattr(module, "KNOB_VALUES", {})
        values = {
            knob.option: readers[knob.option](config)
            if knob.option in readers
            else getattr(config, knob.option.replace("-", "_"), None)
            for knob in self.search_space
        }
        return {knob.option: values[knob.option] for knob in self.search_space if knob.admits(values[knob.option])}

    def keeps_model(self, run: Run) -> bool:
        if self.predictor is None:
            return False
        return self.has_model(run) if self.has_model else True


@cache
def families() -> dict[str, ModelFamily]:
    """Every registered family by kind, in registry order."""
    found: dict[str, ModelFamily] = {}
    for module_name in FAMILY_MODULES:
        for family in importlib.import_module(module_name).FAMILIES:
            if family.kind in found:
                raise RuntimeError(f"{module_name}: kind {family.kind!r} is already registered")
            found[family.kind] = family
    return found


def family_of(kind: str) -> ModelFamily | None:
    return families().get(kind)


def baseline_kind(role: str) -> str | None:
    """The kind of the baseline family with this role (``FLOOR`` or ``BAR``), if one is registered."""
    return next((f.kind for f in families().values() if f.baseline == role), None)


def is_baseline(kind: str) -> bool:
    family = family_of(kind)
    return family is not None and family.baseline is not None


def trainable_families() -> list[ModelFamily]:
    """Families with a trainer CLI that takes the shared options (the dashboard's Train page)."""
    return [f for f in families().values() if f.trainer]


def tunable_families() -> list[ModelFamily]:
    """Families that declare a search space (``benchmarks tune``)."""
    return [f for f in families().values() if f.search_space and f.grid is not None]


def load_predictor_class(family: ModelFamily) -> type:
    if family.predictor is None:
        raise BenchmarkError(f"a {family.kind} run keeps no model ({family.no_model_reason})")
    if family.runtime == "tensorflow" and "tensorflow" not in sys.modules:
        # PyTorch before TensorFlow, should a PyTorch model load later; once TensorFlow is in (a Keras trainer
        # checking its own served model), loading PyTorch would be the crash this order avoids
        from . import torch_first  # noqa: F401
    module, name = family.predictor.split(":")
    return getattr(importlib.import_module(module), name)
