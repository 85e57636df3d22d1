"""Scores under corruption turned into robustness figures, with the evaluator's own metric and bootstrap.

Every set (the clean test split and each corruption × severity) is scored by ``macro_auc`` and resampled with the
draw every run on the dataset shares, so the figures of two runs — and of two sets — are paired image by image.
Figures: macro AUC per set with a 95 % CI; the mean under corruption; relative robustness (mean under corruption
/ clean, 1 = unaffected); and, against a baseline run (the linear probe, as ImageNet-C used AlexNet), the
corruption error CE_c = Σ_s (1 − AUC_s) / Σ_s (1 − AUC_s, baseline), its mean over corruptions (mCE) and the
relative mCE, which counts only the drop from clean (Hendrycks & Dietterich 2019, with 1 − macro AUC as the error).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from benchmarks.data.corrupted_test import CLEAN, parse_set, set_digest
from benchmarks.errors import RunError

from .evaluate import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED
from .metrics import confidence_interval, macro_auc, macro_of
from .resampling import draw_counts, per_label_samples
from .results import Run

ROBUSTNESS_JSON = "robustness.json"
ROBUSTNESS_NPZ = "robustness.npz"  # scores per set and each set's resampled macro AUC, beside robustness.json


def resampled_macro_auc(targets: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """The set's macro AUC on each of the evaluator's resampled test splits (the draw every run shares)."""
    counts = draw_counts(len(targets), BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED)
    return macro_of(per_label_samples(targets, scores, counts)["roc_auc"])


def _figure(value: float | None, samples: np.ndarray) -> dict:
    return {"value": value, "ci": confidence_interval(samples)}


def summarize(targets: np.ndarray, scores: dict[str, np.ndarray], samples: dict[str, np.ndarray]) -> dict:
    """``scores``/``samples`` by set name (``CLEAN`` and ``corruption-severity``): macro AUC per set, the mean under
    corruption, relative robustness, and means per corruption and per severity — each with a 95 % CI."""
    corrupted = [name for name in scores if name != CLEAN]
    points = {name: macro_auc(targets, scores[name]) for name in scores}
    sets = {
        name: {
            "corruption": name.rsplit("-", 1)[0],
            "severity": int(name.rsplit("-", 1)[1]),
            **_figure(points[name], samples[name]),
        }
        for name in corrupted
    }
    out = {"clean": _figure(points[CLEAN], samples[CLEAN]), "sets": sets}
    if not corrupted:
        return out
    mean_samples = np.mean([samples[name] for name in corrupted], axis=0)
    mean_point = float(np.mean([points[name] for name in corrupted]))
    out["mean_corrupted"] = _figure(mean_point, mean_samples)
    with np.errstate(divide="ignore", invalid="ignore"):  # a tiny test split can resample to an AUC of 0
        out["relative"] = _figure(mean_point / points[CLEAN], mean_samples / samples[CLEAN])
    for key, field in (("by_corruption", "corruption"), ("by_severity", "severity")):
        members: dict = {}
        for name, entry in sets.items():
            members.setdefault(entry[field], []).append(name)
        out[key] = {
            str(value): _figure(
                float(np.mean([points[n] for n in names])), np.mean([samples[n] for n in names], axis=0)
            )
            for value, names in members.items()
        }
    return out


def corruption_errors(run: dict, baseline: dict) -> dict:
    """CE per corruption, mCE and relative mCE of one run against a baseline run, from both runs' stored points
    and resampled values (``read_robustness``) on the corruption sets they share; each with a 95 % CI over the
    paired resamples. Below 1: fewer errors (or a smaller drop from clean) than the baseline."""
    shared = sorted(set(run["points"]) & set(baseline["points"]) - {CLEAN})
    by_corruption: dict[str, list[str]] = {}
    for name in shared:
        by_corruption.setdefault(name.rsplit("-", 1)[0], []).append(name)
    if not by_corruption:
        return {"per_corruption": {}, "mce": None, "relative_mce": None, "sets": 0}

    def ratio(names: list[str], key: str, relative: bool):
        """Σ over severities of the run's error (or its drop from clean) / the baseline's."""

        def total(record: dict):
            values = record[key]
            return sum((values[CLEAN] - values[n]) if relative else (1 - values[n]) for n in names)

        with np.errstate(divide="ignore", invalid="ignore"):
            return total(run) / total(baseline)

    per_corruption = {c: _figure(float(ratio(n, "points", False)), ratio(n, "samples", False))
                      for c, n in by_corruption.items()}  # fmt: skip
    mean = {
        relative: (
            float(np.mean([ratio(n, "points", relative) for n in by_corruption.values()])),
            np.mean([ratio(n, "samples", relative) for n in by_corruption.values()], axis=0),
        )
        for relative in (False, True)
    }
    return {
        "per_corruption": per_corruption,
        "mce": _figure(*mean[False]),
        "relative_mce": _figure(*mean[True]),
        "sets": len(shared),
    }


def read_robustness(run: Run) -> dict | None:
    """robustness.json and, from robustness.npz, each set's point and resampled macro AUC (``points``,
    ``samples``); None when the run has not been scored under corruption. One RunError when either is damaged."""
    path = run.path / ROBUSTNESS_JSON
    if not path.is_file():
        return None
    fix = f"score it again with `python -m benchmarks robustness {run.path} --force`"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        with np.load(run.path / ROBUSTNESS_NPZ) as stored:
            samples = {name: stored[f"samples/{name}"].astype(np.float64) for name in record["summary_sets"]}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise RunError(f"{path}: damaged ({error}); {fix}") from None
    summary = record["summary"]
    points = {CLEAN: summary["clean"]["value"], **{n: s["value"] for n, s in summary["sets"].items()}}
    return {**record, "points": points, "samples": samples}


def corrupted_sets(record: dict) -> set[str]:
    """The corruption × severity sets a ``read_robustness`` record holds (the clean split left out)."""
    return set(record["samples"]) - {CLEAN}


def mean_under_corruption(record: dict, sets: list[str] | set[str] | None = None) -> tuple[float, np.ndarray]:
    """Mean macro AUC over ``sets`` (default: every corrupted set the record holds) and its value on each of the
    evaluator's resampled test splits: runs compared on the same sets stay paired image by image."""
    names = sorted(corrupted_sets(record) if sets is None else sets)
    return (
        float(np.mean([record["points"][name] for name in names])),
        np.mean([record["samples"][name] for name in names], axis=0),
    )


def robust_auc_of(run: Run) -> dict:
    """The leaderboard's robust AUC of a run: ``value``, ``ci``, ``sets`` (how many corrupted sets it averages) and
    ``note`` (why there is none, when robustness.json is damaged); value None when the run was not scored."""
    try:
        record = read_robustness(run)
    except RunError as error:
        return {"value": None, "ci": None, "sets": 0, "note": str(error)}
    if record is None or not corrupted_sets(record):
        return {"value": None, "ci": None, "sets": 0, "note": None}
    figure = record["summary"]["mean_corrupted"]  # as robustness.json and the robustness page give it
    return {"value": figure["value"], "ci": figure["ci"], "sets": len(corrupted_sets(record)), "note": None}


def stored_scores(path: Path) -> tuple[str | None, dict[str, np.ndarray]]:
    """The runtime robustness.npz was scored through, and its scores of sets made the same way as now (same
    digest): an interrupted scoring, or one extended with more corruptions, does not score them again."""
    if not path.is_file():
        return None, {}
    try:
        with np.load(path) as stored:
            meta = json.loads(str(stored["meta"]))
            return meta.get("runtime"), {
                name: stored[f"scores/{name}"]
                for name, digest in meta.get("digests", {}).items()
                if f"scores/{name}" in stored.files and digest == set_digest(*parse_set(name))
            }
    except (OSError, ValueError, KeyError):
        return None, {}
