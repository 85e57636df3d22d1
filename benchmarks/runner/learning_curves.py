"""Learning curves: test macro AUC against training images per label, per model, from runs on nested subsets of
one dataset (``benchmarks subset``; a grid's ``subsets = {...}``) and on the dataset itself.

Every subset keeps the dataset's valid and test splits, so every point is scored on the same test images. A point
pools the runs of one model at one size over draws (which subset) and seeds; its band is their range, and the
table also gives the training seeds' own spread (within a draw), so a reader can tell which images were drawn
from how the training happened to go. Against the
bar (the linear probe), each model is compared on each draw with the paired bootstrap of ``compare`` (same subset,
same test images): "ahead of the probe" at a size only where every draw's 95 % CI is above 0.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.data.subsets import subset_info
from benchmarks.evaluation.evaluate import metrics_of
from benchmarks.evaluation.groups import Group, compare_groups, group_runs, seed_of
from benchmarks.evaluation.results import Run, list_runs
from benchmarks.models.registry import BAR, FLOOR, baseline_kind
from benchmarks.training.keep_best import kept_the_start

ALL = "all"  # the point of runs on the full dataset


@dataclass
class Point:
    model: str
    per_label: int | str  # N, or ALL
    runs: list[Run] = field(default_factory=list)
    draws: list[int] = field(default_factory=list)
    train_images: list[int] = field(default_factory=list)
    aucs: list[float] = field(default_factory=list)


def learning_points(results: Path | str, fingerprint: str, full_train_images: int) -> dict[str, list[Point]]:
    """Per model (named as ``leaderboard --group-by model`` names it), its points in order of size; the full
    dataset's runs (``fingerprint``) are the ``ALL`` point."""
    found: list[tuple[Run, int | str, int, int]] = []  # run, per-label, draw, train images
    for run in list_runs(results):
        if run.status != "done":
            continue
        info = subset_info(run.info.get("dataset", {}).get("path", ""))
        if info and info.get("of") == fingerprint and run.fingerprint == _recorded(run):
            found.append((run, int(info["per_label"]), int(info["draw"]), int(info["train_images"])))
        elif run.fingerprint == fingerprint:
            found.append((run, ALL, -1, full_train_images))
    names = {run.run_id: group.name for group in group_runs([f[0] for f in found]) for run in group.runs}
    by_model: dict[str, dict] = {}
    for run, per_label, draw, images in found:
        metrics = metrics_of(run) or {}
        auc = (metrics.get("overall") or {}).get("macro_roc_auc")
        if auc is None:
            continue
        point = by_model.setdefault(names[run.run_id], {}).setdefault(per_label, Point(names[run.run_id], per_label))
        point.runs.append(run)
        point.draws.append(draw)
        point.train_images.append(images)
        point.aucs.append(float(auc))
    return {model: sorted(points.values(), key=_size_key) for model, points in by_model.items()}


def _recorded(run: Run) -> str:
    return run.info.get("dataset", {}).get("fingerprint")


def _size_key(point: Point) -> float:
    return float("inf") if point.per_label == ALL else float(point.per_label)


def curve_table(curves: dict[str, list[Point]]) -> list[dict]:
    """One row per model and size: mean test macro AUC, its range over draws and seeds, the seeds' own spread, runs,
    train images."""
    rows = []
    for model, points in curves.items():
        for point in points:
            values = np.array(point.aucs)
            rows.append(
                {
                    "model": model,
                    "per label": point.per_label,
                    "train images": int(np.mean(point.train_images)),
                    "runs": len(values),
                    "test macro AUC": f"{values.mean():.3f}"
                    + (f" ({values.min():.3f}-{values.max():.3f})" if len(values) > 1 else ""),
                    "seed range": seed_range(point),
                    "kept its start": _kept_start(point.runs),
                }
            )
    return rows


def seed_range(point: Point) -> str:
    """The spread training seeds alone give a point: the range of test macro AUC over the seeds of one draw (one
    subset), averaged over draws; "—" where no draw has two seeds (the probe has no seed)."""
    by_draw: dict[int, dict] = defaultdict(dict)
    for run, draw, auc in zip(point.runs, point.draws, point.aucs):
        by_draw[draw][seed_of(run)] = auc
    ranges = [max(aucs.values()) - min(aucs.values()) for aucs in by_draw.values() if len(aucs) > 1]
    return f"{np.mean(ranges):.3f}" if ranges else "—"


def _kept_start(runs: list[Run]) -> str:
    """How many of a fine-tuning point's runs ended on their starting weights (keep-best found no better epoch)."""
    judged = [run for run in runs if run.info.get("kept")]
    return f"{sum(kept_the_start(run.info['kept']) for run in judged)}/{len(judged)}" if judged else "—"


def against_the_bar(curves: dict[str, list[Point]]) -> list[dict]:
    """Per model and size: each draw's paired comparison with the probe's run on the same subset (seeds pooled),
    and whether the model is ahead in every draw."""
    bar, floor = baseline_kind(BAR), baseline_kind(FLOOR)
    bars = {model: points for model, points in curves.items() if points and points[0].runs[0].kind == bar}
    if not bars:
        return []
    bar_points = {p.per_label: p for p in next(iter(bars.values()))}
    out = []
    for model, points in curves.items():
        if model in bars or points[0].runs[0].kind == floor:  # the prior scores every image alike: nothing to ask
            continue
        for point in points:
            reference = bar_points.get(point.per_label)
            if reference is None:
                continue
            differences = []
            for draw in sorted(set(point.draws)):
                mine = [r for r, d in zip(point.runs, point.draws) if d == draw]
                theirs = [r for r, d in zip(reference.runs, reference.draws) if d == draw]
                if mine and theirs:
                    compared = compare_groups(Group(model, mine), Group("probe", theirs))["metrics"]["macro_roc_auc"]
                    differences.append((draw, compared["difference"], compared["ci"]))
            if differences:
                ahead = all(ci is not None and ci[0] > 0 for _, _, ci in differences)
                behind = all(ci is not None and ci[1] < 0 for _, _, ci in differences)
                out.append(
                    {
                        "model": model,
                        "per label": point.per_label,
                        "draws": len(differences),
                        "mean difference": float(np.mean([d for _, d, _ in differences])),
                        "verdict": "ahead of the probe in every draw"
                        if ahead
                        else "behind the probe in every draw"
                        if behind
                        else "not distinguishable from the probe",
                    }
                )
    return out


def first_ahead(comparisons: list[dict]) -> dict[str, int | str | None]:
    """Per model, the smallest size from which it is ahead of the probe at every larger size measured."""
    out: dict[str, int | str | None] = {}
    for model in dict.fromkeys(c["model"] for c in comparisons):
        rows = [c for c in comparisons if c["model"] == model]
        rows.sort(key=lambda c: float("inf") if c["per label"] == ALL else float(c["per label"]))
        first = None
        for row in rows:
            if row["verdict"] == "ahead of the probe in every draw":
                first = row["per label"] if first is None else first
            else:
                first = None
        out[model] = first
    return out


def curves_for_chart(curves) -> dict[str, dict]:
    """Per model: images per label (the full dataset's point at its mean train images per label), mean, range."""
    out = {}
    for model, points in curves.items():
        sized = [p for p in points if p.per_label != ALL]
        out[model] = {
            "x": [p.per_label for p in sized],
            "mean": [float(np.mean(p.aucs)) for p in sized],
            "low": [float(np.min(p.aucs)) for p in sized],
            "high": [float(np.max(p.aucs)) for p in sized],
        }
    return out


def ahead_line(model: str, size) -> str:
    """One line of the verdict ``first_ahead`` gives for a model."""
    if size is None:
        return f"{model}: not ahead of the probe at the largest size measured"
    if size == ALL:
        return f"{model}: ahead of the probe only with the whole training split"
    return f"{model}: ahead of the probe from {size} images per label on"


def learning_summary(curves: dict[str, list[Point]]) -> dict:
    """What every view of the curves shows (report, dashboard): whether any subset was run, the chart's series, the
    table, each size against the probe and from which size each model stays ahead."""
    comparisons = against_the_bar(curves)
    return {
        "subsets": any(point.per_label != ALL for points in curves.values() for point in points),
        "chart": curves_for_chart(curves),
        "table": curve_table(curves),
        "comparisons": comparisons,
        "first_ahead": first_ahead(comparisons),
    }
