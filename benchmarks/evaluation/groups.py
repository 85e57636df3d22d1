"""Runs grouped by model — one family, backbone and settings, several seeds — and verdicts that survive seed noise.

A single run's confidence interval resamples test images only; it cannot see how much another seed would have
moved the result, which for fine-tuning is often as large as the differences being compared (Bouthillier et al.,
MLSys 2021). Here the interval resamples **seeds and test images** (a two-level bootstrap: seeds with replacement,
then the same resampled test images for every seed), and two groups are compared pairwise on those images with
their seeds drawn independently. The probability of improvement P(A > B) is the share of seed pairs where A's run
beats B's (the Mann-Whitney statistic, as rliable reports it).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.errors import BenchmarkError, RunError

from . import evaluate
from .evaluate import (
    BIASED_UNDER_RESAMPLING,
    BOOTSTRAP_SEED,
    LOWER_IS_BETTER,
    MACRO_OF_LABEL_SAMPLES,
    aligned_scores,
    dataset_of,
    metrics_of,
)
from .metrics import confidence_interval, macro_of
from .results import BOOTSTRAP_NPZ, PARAM_DEFAULTS_WHEN_MISSING, Run, finished_runs_on, newest_per
from .robustness import corrupted_sets, mean_under_corruption, read_robustness

METRICS = tuple(MACRO_OF_LABEL_SAMPLES)  # the macro metrics compared, each the mean of a per-label sample
PER_LABEL = MACRO_OF_LABEL_SAMPLES
# params a run records that are not settings: the seed itself, what training found (they differ by seed), and how
# it was executed (fastai's loader processes, 0 on a CPU and a few beside a GPU, or None where left unresolved)
NOT_SETTINGS = ("seed", "lr_used", "lr_find_suggestion", "chosen_c", "policy", "num_workers")
ROBUST_AUC = "robust_auc"  # mean test macro AUC under corruption (``benchmarks robustness``), where scored
SEED_RESAMPLING_SEED = 1  # the seed draw is independent of the image draw (BOOTSTRAP_SEED)


def settings_of(run: Run) -> dict:
    """The run's settings, without those at a default older runs do not record (so old and new runs made the same
    way group together), and, for a tuned run, without the values its study chose: they differ from seed to seed
    like a learned weight, and the model is "tuned with this study's settings" (``params.tuning``)."""
    chosen = study_choices(run)
    return {
        k: v
        for k, v in run.params.items()
        if k not in NOT_SETTINGS
        and k not in chosen
        and not (k in PARAM_DEFAULTS_WHEN_MISSING and v == PARAM_DEFAULTS_WHEN_MISSING[k])
    }


def study_choices(run: Run) -> set[str]:
    """The params a tuning study set (its knobs' names, ``label-smoothing`` as ``label_smoothing``; the probe's
    ``c`` is recorded as ``c_grid``); empty for a run no study chose."""
    knobs = {name.replace("-", "_") for name in ((run.info.get("study") or {}).get("chosen") or {})}
    return {k for k in run.params if k in knobs or k.split("_")[0] in knobs - set(run.params)}


def seed_of(run: Run):
    return run.params.get("seed")


@dataclass
class Group:
    """Runs of one model: the same kind, backbone and settings; normally one run per seed."""

    name: str
    runs: list[Run] = field(default_factory=list)

    @property
    def seeds(self) -> list:
        return [seed_of(run) for run in self.runs]

    @property
    def kind(self) -> str:
        return self.runs[0].kind


def group_runs(runs: list[Run]) -> list[Group]:
    """Runs by model, in first-seen order. Names read ``kind·backbone·preset``; models that share such a name get
    the settings that tell them apart appended, e.g. ``fastai·lite0·quick (epochs=3)``."""
    by_key: dict[str, list[Run]] = {}
    for run in runs:
        key = json.dumps([run.kind, run.backbone, settings_of(run)], sort_keys=True, default=str)
        by_key.setdefault(key, []).append(run)
    base = {key: _base_name(members[0]) for key, members in by_key.items()}
    groups = []
    for key, members in by_key.items():
        name = base[key]
        namesakes = [settings_of(by_key[k][0]) for k in by_key if base[k] == name]
        if len(namesakes) > 1:
            shown = [f"{k}={v}" for k, v in _distinguishing(settings_of(members[0]), namesakes).items()]
            name += f" ({', '.join(shown)})" if shown else ""
        groups.append(Group(name, members))
    return groups


def _distinguishing(mine: dict, namesakes: list[dict]) -> dict:
    """The settings where this model leaves the usual value among the models sharing its name (a value most of them
    share is not shown, a tie is), so a grid of one-change variants reads ``(lr=0.008)``, ``(mixup=True)``."""

    def value(settings: dict, key: str):
        return settings.get(key, PARAM_DEFAULTS_WHEN_MISSING.get(key, "—"))

    mine, namesakes = _flat(mine), [_flat(settings) for settings in namesakes]
    shown = {}
    for key in sorted({k for settings in namesakes for k in settings}):
        counts = Counter(json.dumps(value(settings, key), default=str) for settings in namesakes).most_common()
        if len(counts) == 1:
            continue
        usual_is_unique = counts[0][1] > counts[1][1]
        if not usual_is_unique or json.dumps(value(mine, key), default=str) != counts[0][0]:
            shown[key] = value(mine, key)
    return shown


def _flat(settings: dict, prefix: str = "") -> dict:
    """Nested settings as dotted keys (``tuning.selection``), so a name shows the one value that differs."""
    flat = {}
    for key, value in settings.items():
        if isinstance(value, dict) and value:
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def newest_per_model(results: Path | str, dataset) -> list[Run]:
    """The newest finished run of each model (kind, backbone, settings: seeds pooled) trained on ``dataset`` (a
    ``Dataset``): what `make robustness` scores and `tools.speed --dataset` times."""
    runs = finished_runs_on(results, dataset.fingerprint)
    model_of = {run.run_id: group.name for group in group_runs(runs) for run in group.runs}
    return list(newest_per(runs, lambda run: model_of[run.run_id]).values())


def run_names(runs: list[Run]) -> dict[str, str]:
    """A readable name per run id: its model's name (as in ``group_runs``) and its seed, e.g.
    ``fastai·lite0·quick (img_size=96) · seed 1``; runs that still share a name get their start time and the
    run id's random suffix added."""
    names = {}
    for group in group_runs(runs):
        for run in group.runs:
            seed = seed_of(run)
            names[run.run_id] = group.name + (f" · seed {seed}" if seed is not None else "")
    counts = Counter(names.values())
    for run in runs:
        if counts[names[run.run_id]] > 1:
            started = str(run.info.get("created") or "")[:16].replace("T", " ")
            names[run.run_id] += f" · {started} #{run.run_id.rsplit('-', 1)[-1]}".replace("  ", " ")
    return names


def params_diff(a: Run, b: Run) -> list[dict]:
    """The settings two runs do not share (kind and backbone first), for "why do these two runs differ?"."""
    rows = [
        {"setting": name, "A": value_a, "B": value_b}
        for name, value_a, value_b in (("kind", a.kind, b.kind), ("backbone", a.backbone, b.backbone))
        if value_a != value_b
    ]
    for key in sorted(set(a.params) | set(b.params)):
        value_a, value_b = a.params.get(key, "—"), b.params.get(key, "—")
        if value_a != value_b:
            rows.append({"setting": key, "A": str(value_a), "B": str(value_b)})
    return rows


def _base_name(run: Run) -> str:
    parts = [run.kind, run.backbone or "", str(run.params.get("preset") or "")]
    return "·".join(p for p in parts if p)


def find_group(groups: list[Group], name: str) -> Group:
    for group in groups:
        if group.name == name:
            return group
    known = "; ".join(g.name for g in groups) or "none"
    raise BenchmarkError(f"no model group named {name!r} (groups here: {known})")


def point_values(group: Group, metric: str) -> np.ndarray:
    """Each run's metric on the full test split (NaN where undefined)."""
    values = []
    for run in group.runs:
        metrics = metrics_of(run)
        value = metrics["overall"].get(metric) if metrics else None
        values.append(np.nan if value is None else float(value))
    return np.array(values, dtype=np.float64)


def bootstrap_samples(run: Run, metric: str) -> np.ndarray:
    """The run's macro metric on each resampled test split — read from metrics.json when the evaluator stored them
    with the current settings, derived from the per-label samples otherwise (the same seeded draw either way, so
    runs stay paired)."""
    metrics = metrics_of(run)
    stored = (metrics or {}).get("bootstrap", {})
    samples = stored.get("samples", {}).get(metric)
    resamples = evaluate.BOOTSTRAP_RESAMPLES
    if (
        samples is not None
        and stored.get("resamples") == resamples
        and stored.get("seed") == BOOTSTRAP_SEED
        and len(samples) == resamples
    ):
        return np.array([np.nan if v is None else v for v in samples], dtype=np.float64)
    return macro_of(label_samples(run, PER_LABEL[metric]))


def stored_label_samples(run: Run, name: str) -> np.ndarray | None:
    """(resamples, labels) of per-label ``roc_auc`` or ``ap`` from bootstrap.npz, when the evaluator wrote it with
    the current settings; else None."""
    path = run.path / BOOTSTRAP_NPZ
    if not path.is_file():
        return None
    try:
        with np.load(path) as stored:
            values = stored[name].astype(np.float64)
            current = int(stored["resamples"]) == evaluate.BOOTSTRAP_RESAMPLES
            current = current and int(stored["seed"]) == BOOTSTRAP_SEED
    except (OSError, KeyError, ValueError):
        return None
    return values if current and values.shape == (evaluate.BOOTSTRAP_RESAMPLES, len(run.labels)) else None


def label_samples(run: Run, name: str) -> np.ndarray:
    """``stored_label_samples``, else computed in memory (nothing is written: ``evaluate`` stores them)."""
    stored = stored_label_samples(run, name)
    if stored is not None:
        return stored
    dataset = dataset_of(run)
    targets, scores = aligned_scores(run, dataset, "test")
    return evaluate.bootstrap_per_label(targets, scores)[name]


def _sample_matrix(group: Group, metric: str) -> np.ndarray:
    """(resamples, runs): run s's metric on resampled test split b."""
    return np.column_stack([bootstrap_samples(run, metric) for run in group.runs])


def _seed_draw(matrix: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per resample, the seeds drawn with replacement: (resamples, runs) of the drawn runs' values."""
    picks = rng.integers(0, matrix.shape[1], matrix.shape)
    return np.take_along_axis(matrix, picks, axis=1)


def summarize(group: Group) -> dict:
    """Per metric: mean and sd over seeds, and a 95% CI over seeds × test images; ``robust_auc`` (mean macro AUC
    under corruption) where every run was scored by ``benchmarks robustness`` on common sets, else None."""
    rng = np.random.default_rng(SEED_RESAMPLING_SEED)
    out = {"model": group.name, "kind": group.kind, "seeds": group.seeds, "runs": [r.run_id for r in group.runs]}
    for metric in METRICS:
        values = point_values(group, metric)
        out[metric] = _pooled(values, _sample_matrix(group, metric) if np.isfinite(values).any() else None, metric, rng)
    robust = robust_values([group])
    out[ROBUST_AUC] = _pooled(*robust[0][0], ROBUST_AUC, rng) if robust else {"mean": None, "sd": None, "ci": None}
    return out


def _pooled(values: np.ndarray, matrix, metric: str, rng: np.random.Generator) -> dict:
    """Mean and sd of the seeds' ``values``; the CI over seeds × test images from ``matrix`` (resamples, runs)."""
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return {"mean": None, "sd": None, "ci": None}
    with np.errstate(all="ignore"):
        drawn = np.nanmean(_seed_draw(matrix, rng), axis=1)
    if metric in BIASED_UNDER_RESAMPLING:  # as the evaluator's interval: shifted by the bootstrap's bias
        drawn = drawn - (float(np.nanmean(drawn)) - float(finite.mean()))
    return {
        "mean": float(finite.mean()),
        "sd": float(finite.std(ddof=1)) if len(finite) > 1 else None,
        "ci": confidence_interval(drawn),
    }


def robust_values(groups: list[Group]) -> tuple[list[tuple[np.ndarray, np.ndarray]], int] | None:
    """Per group, each run's mean macro AUC under corruption and its (resamples, runs) matrix, over the corrupted
    sets every run of every group was scored on — so the figures compared are of the same images and sets. None
    when some run was not scored (or its record is damaged: the leaderboard row says so) or no set is common; else
    the per-group pairs and how many sets they average."""
    records = {}
    for run in (run for group in groups for run in group.runs):
        try:
            records[run.run_id] = read_robustness(run)
        except RunError:
            return None
        if records[run.run_id] is None:
            return None
    shared = set.intersection(*(corrupted_sets(record) for record in records.values()))
    if not shared:
        return None
    out = []
    for group in groups:
        means = [mean_under_corruption(records[run.run_id], shared) for run in group.runs]
        out.append((np.array([m[0] for m in means]), np.column_stack([m[1] for m in means])))
    return out, len(shared)


def compare_groups(a: Group, b: Group) -> dict:
    """A minus B: the difference of seed means with a 95% CI over seeds (drawn independently for A and B) and the
    same resampled test images for both; P(A > B) over seed pairs with its CI; a verdict only where the CI says so."""
    fingerprints = {r.fingerprint for r in a.runs + b.runs}
    if len(fingerprints) > 1:
        raise RunError(
            f"{a.name} and {b.name} were made on different datasets (fingerprints differ); they cannot be compared"
        )
    rng = np.random.default_rng(SEED_RESAMPLING_SEED)
    resamples = evaluate.BOOTSTRAP_RESAMPLES
    n_images = dataset_of(a.runs[0]).targets("test").shape[0]
    result = {
        "a": a.name,
        "b": b.name,
        "a_runs": [r.run_id for r in a.runs],
        "b_runs": [r.run_id for r in b.runs],
        "n_seeds": [len(a.runs), len(b.runs)],
        "n_test_images": int(n_images),
        "resamples": resamples,
        "metrics": {},
    }
    for metric in METRICS:
        result["metrics"][metric] = _compared(
            (a, b), (point_values(a, metric), point_values(b, metric)), lambda g: _sample_matrix(g, metric), metric, rng
        )
    robust = robust_values([a, b])
    if robust:
        (pair_a, pair_b), sets = robust
        matrices = {a.name: pair_a[1], b.name: pair_b[1]}
        entry = _compared((a, b), (pair_a[0], pair_b[0]), lambda g: matrices[g.name], ROBUST_AUC, rng)
        result["metrics"][ROBUST_AUC] = {**entry, "sets": sets}
    return result


def _compared(groups: tuple[Group, Group], values: tuple, matrix, metric: str, rng: np.random.Generator) -> dict:
    """A minus B on one metric: ``values`` each run's point figure, ``matrix(group)`` its (resamples, runs)."""
    (a, b), (values_a, values_b) = groups, values
    several = len(a.runs) > 1 or len(b.runs) > 1
    if not (np.isfinite(values_a).any() and np.isfinite(values_b).any()):
        return {"a": None, "b": None, "difference": None, "ci": None, "verdict": verdict(None, a.name, b.name, several)}
    drawn_a, drawn_b = _seed_draw(matrix(a), rng), _seed_draw(matrix(b), rng)
    with np.errstate(all="ignore"):
        differences = np.nanmean(drawn_a, axis=1) - np.nanmean(drawn_b, axis=1)
    ci = confidence_interval(differences)
    entry = {
        "a": float(np.nanmean(values_a)),
        "b": float(np.nanmean(values_b)),
        "difference": float(np.nanmean(values_a) - np.nanmean(values_b)),
        "ci": ci,
        "verdict": verdict(ci, a.name, b.name, several, lower_is_better=metric in LOWER_IS_BETTER),
    }
    if several:
        entry["a_sd"], entry["b_sd"] = _sd(values_a), _sd(values_b)
        entry["p_a_better"] = probability_of_improvement(values_a, values_b)
        entry["p_a_better_ci"] = confidence_interval(
            np.array([probability_of_improvement(x, y) for x, y in zip(drawn_a, drawn_b)], dtype=np.float64)
        )
    return entry


def _sd(values: np.ndarray) -> float | None:
    """The sample sd over seeds; None with fewer than two."""
    finite = values[np.isfinite(values)]
    return float(finite.std(ddof=1)) if len(finite) > 1 else None


def probability_of_improvement(values_a: np.ndarray, values_b: np.ndarray) -> float:
    """P(A > B): over every pair (run of A, run of B), 1 when A's is higher, ½ on a tie — U / (n·m)."""
    from scipy.stats import mannwhitneyu  # here: scipy.stats costs a second to import, and few callers need it

    a, b = values_a[np.isfinite(values_a)], values_b[np.isfinite(values_b)]
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    return float(mannwhitneyu(a, b).statistic / (len(a) * len(b)))


def verdict(
    ci: list[float] | None, name_a: str, name_b: str, several_seeds: bool, lower_is_better: bool = False
) -> str:
    """From the CI of A minus B; for ECE and Brier a negative difference is A's win."""
    if ci is None:
        return "not comparable (metric undefined)"
    if ci[0] > 0:
        return f"{name_b if lower_is_better else name_a} is better"
    if ci[1] < 0:
        return f"{name_a if lower_is_better else name_b} is better"
    if several_seeds:
        return "not distinguishable from seed and test-image noise"
    return "no significant difference"
