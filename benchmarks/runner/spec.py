"""A benchmark grid spec (TOML) read into cells: datasets × models × backbones × seeds, each cell one ordinary run.

The spec is written by the user like a command line: its dataset paths are taken as given (relative ones from the
current folder). Every mistake is refused in one line naming the spec and the field.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.errors import BenchmarkError
from benchmarks.models.registry import GridSupport, families

TOP_KEYS = {"name", "seeds", "datasets", "models", "resources", "tune"}
# [tune]: every tunable model is tuned with this budget (and, with folds, chosen by cross-validation)
TUNE_KEYS = {"trials", "budget-seconds", "sampler", "prune", "folds", "group-folds", "soup"}
DATASET_KEYS = {"path", "build", "subsets"}
SUBSET_KEYS = {"per-label", "draws"}  # subsets = {...}: nested train subsets for learning curves (benchmarks subset)
MODEL_KEYS = {"family", "backbones", "preset", "options", "datasets", "cpus", "gpus"}
BUILD_OPTIONS = {"size", "img-size", "seed"}  # `benchmarks build-default` flags a spec may set
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class DatasetEntry:
    path: Path
    build: dict | None  # build-default options when the spec may create it; None: it must exist
    subset: dict | None = None  # {"of": Path, "per_label": N, "draw": d}: made by `benchmarks subset` from "of"


def subset_path(of: Path, per_label: int, draw: int) -> Path:
    """Where a grid keeps a subset of ``of``: beside it, in ``<of>-subsets/``."""
    return of.parent / f"{of.name}-subsets" / f"{of.name}-{per_label}-per-label-draw{draw}"


@dataclass(frozen=True)
class Cell:
    """One run of the grid. ``key`` names it stably (the ledger and the logs use it)."""

    dataset: Path
    family: str
    support: GridSupport
    backbone: str | None
    preset: str | None
    options: dict = field(default_factory=dict)
    seed: int | None = None
    cpus: float = 1
    gpus: float = 0
    tune: dict | None = None  # the spec's [tune] budget: the cell is a study (``benchmarks tune``), not one run

    @property
    def key(self) -> str:
        parts = [self.dataset.name, self.family]
        parts += [p for p in (self.backbone, self.preset) if p]
        if self.options:
            parts.append(",".join(f"{k}={v}" for k, v in sorted(self.options.items())))
        if self.tune:
            parts.append("tuned")
        if self.seed is not None:
            parts.append(f"seed={self.seed}")
        return "/".join(parts)

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.=,-]+", "_", self.key.replace("/", "__"))

    def argv(self, results: Path) -> list[str]:
        """``[module, args...]`` for ``python -m``; a data-parallel family's cell with 2+ GPUs is launched by
        ``torchrun`` (``torch.distributed.run``), one process per GPU."""
        if self.tune:
            return self.tune_argv(results)
        argv = self.launcher() + families()[self.family].grid_argv(self.dataset, results)
        if self.seed is not None:
            argv += ["--seed", str(self.seed)]
        if self.backbone:
            argv += ["--backbone", self.backbone]
        if self.preset:
            argv += ["--preset", self.preset]
        for name, value in sorted(self.options.items()):
            if value is True:
                argv.append(f"--{name}")
            elif value is not False:
                argv += [f"--{name}", str(value)]
        return argv

    def tune_argv(self, results: Path) -> list[str]:
        """The study this cell stands for: its options are knobs held fixed (``img-size`` is every trial's size)."""
        argv = ["benchmarks", "tune", str(self.dataset), "--family", self.family, "--results", str(results)]
        argv += ["--trials", str(self.tune["trials"]), "--cpus-per-trial", f"{self.cpus:g}"]
        for name in ("budget-seconds", "sampler", "folds"):
            if name in self.tune:
                argv += [f"--{name}", str(self.tune[name])]
        if self.tune.get("prune") is False:
            argv.append("--no-prune")
        if self.tune.get("group-folds"):
            argv.append("--group-folds")
        if self.tune.get("soup") and families()[self.family].souper:  # the probe has no weights to average
            argv.append("--soup")
        argv += ["--seed", str(self.seed or 0)]
        if self.backbone:
            argv += ["--backbone", self.backbone]
        if self.preset:
            argv += ["--preset", self.preset]
        options = dict(self.options)
        if "img-size" in options:
            argv += ["--img-size", str(options.pop("img-size"))]
        if options:
            argv += ["--fix", *(f"{name}={value}" for name, value in sorted(options.items()))]
        return argv

    def launcher(self) -> list[str]:
        processes = int(self.gpus)
        if not self.support.data_parallel or processes < 2:
            return []
        return ["torch.distributed.run", "--standalone", "--nproc_per_node", str(processes), "-m"]

    def wanted_params(self) -> dict:
        """What the finished run's params must hold for it to be this cell's run."""
        if self.tune:
            return {"preset": "tuned", **({"seed": self.seed} if self.seed is not None else {})}
        wanted = {name.replace("-", "_"): value for name, value in self.options.items()}
        if self.seed is not None:
            wanted["seed"] = self.seed
        if self.preset:
            wanted["preset"] = self.preset
        return wanted


@dataclass(frozen=True)
class GridSpec:
    name: str
    path: Path
    datasets: list[DatasetEntry]
    cells: list[Cell]


def read_spec(path: Path | str) -> GridSpec:
    path = Path(path)
    if not path.is_file():
        raise BenchmarkError(f"{path}: grid spec not found; see benchmarks/grids/reference.toml for an example")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BenchmarkError(f"{path}: not valid TOML ({exc}); fix the file") from None
    _no_unknown(raw, TOP_KEYS, path, "the top level")
    name = raw.get("name", path.stem)
    if not isinstance(name, str) or not NAME.match(name):
        raise BenchmarkError(f"{path}: name {name!r}: use 1-64 letters, digits, '.', '_' or '-'")
    seeds = raw.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(type(s) is int and s >= 0 for s in seeds):
        raise BenchmarkError(f"{path}: seeds must be a list of non-negative integers, e.g. seeds = [0, 1, 2]")
    if len(set(seeds)) != len(seeds):
        raise BenchmarkError(f"{path}: seeds {seeds} repeat a seed")
    datasets = [d for i, entry in enumerate(_table_list(raw, "datasets", path)) for d in _dataset(entry, path, i)]
    defaults = raw.get("resources", {})
    if not isinstance(defaults, dict):
        raise BenchmarkError(f"{path}: [resources] must be a table, e.g. cpus = 2")
    _no_unknown(defaults, {"cpus", "gpus"}, path, "[resources]")
    tune = _tune(raw.get("tune"), path)
    cells = []
    for i, entry in enumerate(_table_list(raw, "models", path)):
        cells += _model_cells(entry, datasets, seeds, defaults, path, i, tune)
    keys = [cell.key for cell in cells]
    if len(set(keys)) != len(keys):
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        raise BenchmarkError(f"{path}: cell {repeated[0]} is listed twice; remove the repeated model entry")
    return GridSpec(name, path, datasets, cells)


def _table_list(raw: dict, key: str, path: Path) -> list[dict]:
    entries = raw.get(key)
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise BenchmarkError(f"{path}: needs at least one [[{key}]] table")
    return entries


def _no_unknown(table: dict, known: set[str], path: Path, where: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise BenchmarkError(f"{path}: {where}: unknown key {unknown[0]!r}; known: {', '.join(sorted(known))}")


def _dataset(entry: dict, path: Path, index: int) -> list[DatasetEntry]:
    """The entry's dataset, then its train subsets when it asks for them (``subsets = {per-label = [...]}``)."""
    where = f"[[datasets]] #{index + 1}"
    _no_unknown(entry, DATASET_KEYS, path, where)
    if not isinstance(entry.get("path"), str) or not entry["path"].strip():
        raise BenchmarkError(f'{path}: {where}: path = "DATASET FOLDER" is required')
    build = entry.get("build")
    if build is not None:
        if not isinstance(build, dict):
            raise BenchmarkError(
                f"{path}: {where}: build must be a table of build-default options, e.g. {{size = 450}}"
            )
        _no_unknown(build, BUILD_OPTIONS, path, f"{where} build")
        if not all(type(v) is int and v >= 0 for v in build.values()):
            raise BenchmarkError(f"{path}: {where}: build options are non-negative integers")
    full = DatasetEntry(Path(entry["path"]), build)
    subsets = entry.get("subsets")
    if subsets is None:
        return [full]
    example = "e.g. subsets = {per-label = [10, 25, 50, 100], draws = [0, 1, 2]}"
    if not isinstance(subsets, dict):
        raise BenchmarkError(f"{path}: {where}: subsets must be a table, {example}")
    _no_unknown(subsets, SUBSET_KEYS, path, f"{where} subsets")
    sizes, draws = subsets.get("per-label"), subsets.get("draws", [0])
    for name, values in (("per-label", sizes), ("draws", draws)):
        if not isinstance(values, list) or not values or not all(type(v) is int and v >= 0 for v in values):
            raise BenchmarkError(f"{path}: {where}: subsets {name} must be a list of non-negative integers, {example}")
    if 0 in sizes:
        raise BenchmarkError(f"{path}: {where}: subsets per-label must be at least 1")
    return [full] + [
        DatasetEntry(subset_path(full.path, n, d), None, {"of": full.path, "per_label": n, "draw": d})
        for n in sorted(set(sizes))
        for d in sorted(set(draws))
    ]


def _tune(table, path: Path) -> dict | None:
    """The spec's [tune] block: the budget every tunable model of the grid is tuned with."""
    if table is None:
        return None
    if not isinstance(table, dict):
        raise BenchmarkError(f"{path}: [tune] must be a table, e.g. trials = 16")
    _no_unknown(table, TUNE_KEYS, path, "[tune]")
    if type(table.get("trials")) is not int or table["trials"] < 1:
        raise BenchmarkError(f"{path}: [tune] trials must be a positive integer, the budget every family gets")
    seconds = table.get("budget-seconds")
    if seconds is not None and (not isinstance(seconds, (int, float)) or seconds <= 0):
        raise BenchmarkError(f"{path}: [tune] budget-seconds must be a positive number")
    if table.get("sampler", "tpe") not in ("tpe", "random"):
        raise BenchmarkError(f'{path}: [tune] sampler must be "tpe" or "random"')
    if not isinstance(table.get("prune", True), bool):
        raise BenchmarkError(f"{path}: [tune] prune must be true or false")
    if type(table.get("folds", 1)) is not int or table.get("folds", 1) < 1:
        raise BenchmarkError(f"{path}: [tune] folds must be a whole number, 2 or more for cross-validated choice")
    if not isinstance(table.get("group-folds", False), bool) or (
        table.get("group-folds") and table.get("folds", 1) < 2
    ):
        raise BenchmarkError(f"{path}: [tune] group-folds must be true or false, and true only with folds = 2 or more")
    if not isinstance(table.get("soup", False), bool) or (table.get("soup") and table.get("folds", 1) > 1):
        raise BenchmarkError(f"{path}: [tune] soup must be true or false, and true only without folds")
    return dict(table)


def _model_cells(
    entry: dict,
    datasets: list[DatasetEntry],
    seeds: list[int],
    defaults: dict,
    path: Path,
    index: int,
    tune: dict | None = None,
) -> list[Cell]:
    where = f"[[models]] #{index + 1}"
    _no_unknown(entry, MODEL_KEYS, path, where)
    kind = entry.get("family")
    family = families().get(kind) if isinstance(kind, str) else None
    if family is None or family.grid is None:
        runnable = ", ".join(k for k, f in families().items() if f.grid)
        raise BenchmarkError(f"{path}: {where}: family {kind!r} cannot run in a grid; choose one of: {runnable}")
    support = family.grid
    backbones = entry.get("backbones", [None])
    if backbones != [None]:
        if not support.takes_backbone:
            raise BenchmarkError(f"{path}: {where}: {kind} has no backbone choice; remove backbones")
        if not isinstance(backbones, list) or not backbones or any(b not in family.backbones for b in backbones):
            raise BenchmarkError(f"{path}: {where}: backbones must be a list from {', '.join(family.backbones)}")
    preset = entry.get("preset")
    if preset is not None and (not support.takes_preset or not isinstance(preset, str)):
        raise BenchmarkError(
            f"{path}: {where}: {kind} takes no preset"
            if not support.takes_preset
            else f'{path}: {where}: preset must be a name such as "quick"'
        )
    options = entry.get("options", {})
    if not isinstance(options, dict) or not all(
        isinstance(k, str) and re.fullmatch(r"[a-z][a-z0-9-]*", k) and isinstance(v, (str, int, float, bool))
        for k, v in options.items()
    ):
        raise BenchmarkError(
            f"{path}: {where}: options must be flag = value pairs, e.g. options = {{epochs = 1, img-size = 64}}"
        )
    if {"seed", "backbone", "preset", "dataset", "results"} & set(options):
        raise BenchmarkError(f"{path}: {where}: set seeds, backbones and preset with their own keys, not in options")
    cpus, gpus = entry.get("cpus", defaults.get("cpus", 1)), entry.get("gpus", defaults.get("gpus", 0))
    if not all(isinstance(v, (int, float)) and v >= 0 for v in (cpus, gpus)):
        raise BenchmarkError(f"{path}: {where}: cpus and gpus must be non-negative numbers")
    only = entry.get("datasets")
    if only is not None:
        known = {str(d.path) for d in datasets}
        if not isinstance(only, list) or not only or any(str(Path(o)) not in known for o in only):
            raise BenchmarkError(f"{path}: {where}: datasets must list paths from [[datasets]] ({', '.join(known)})")
        chosen = {str(Path(o)) for o in only}  # a dataset named here brings its subsets along
        datasets = [d for d in datasets if str(d.path) in chosen or (d.subset and str(d.subset["of"]) in chosen)]
    tuned = tune if family.search_space else None  # a family with nothing to tune (the prior) runs as it is
    if tuned:
        knobs = {knob.option for knob in family.search_space} | {"img-size"}
        if unknown := sorted(set(options) - knobs):
            raise BenchmarkError(
                f"{path}: {where}: option {unknown[0]!r} is not one of {kind}'s knobs, which [tune] can hold fixed: "
                f"{', '.join(sorted(knobs))}"
            )
    return [
        Cell(d.path, kind, support, backbone, preset, dict(options), seed, cpus, gpus, tuned)
        for d in datasets
        for backbone in backbones
        for seed in (seeds if support.seeded or tuned else [None])
    ]
