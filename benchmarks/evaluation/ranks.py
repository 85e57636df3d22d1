"""Models ranked across datasets (Demšar, JMLR 2006): average ranks, the Friedman test, and the Nemenyi critical
difference — two models whose average ranks differ by less than it are not distinguishable over these datasets.

Every statistic is scipy's (``rankdata``, ``friedmanchisquare``, ``studentized_range``); only the arithmetic of
the critical difference, CD = q_α · √(k(k+1) / 6N) with q_α the studentized range quantile over √2, is written here.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from scipy.stats import friedmanchisquare, rankdata, studentized_range

from benchmarks.data.dataset import Dataset
from benchmarks.errors import BenchmarkError

from .leaderboard import group_leaderboard
from .results import list_runs

ALPHA = 0.05
MIN_DATASETS = 3


def scores_by_dataset(results: Path, datasets: list[Dataset] | None = None) -> pd.DataFrame:
    """Datasets × models: each model's macro AUC (mean over its seeds) on each dataset with runs in ``results``
    (or only ``datasets``). Models are matched across datasets by name (``kind·backbone·preset``)."""
    runs = [run for run in list_runs(results) if run.status == "done"]
    by_fingerprint: dict[str, list] = {}
    for run in runs:
        by_fingerprint.setdefault(run.fingerprint, []).append(run)
    wanted = {d.fingerprint: d.name for d in datasets} if datasets else None
    rows = {}
    for fingerprint, members in by_fingerprint.items():
        if wanted is not None and fingerprint not in wanted:
            continue
        name = wanted[fingerprint] if wanted else members[0].dataset_name
        table = group_leaderboard(results, runs=members)
        rows[f"{name} ({fingerprint.split(':')[-1][:8]})"] = dict(zip(table["model"], table["macro_auc"]))
    return pd.DataFrame.from_dict(rows, orient="index")


def average_ranks(scores: pd.DataFrame, alpha: float = ALPHA) -> dict:
    """``scores``: datasets × models (higher is better), only models scored on every dataset. Rank 1 is best."""
    scores = scores.dropna(axis=1, how="any")
    n_datasets, k = scores.shape
    if n_datasets < MIN_DATASETS or k < 2:
        raise BenchmarkError(
            f"ranking across datasets needs at least {MIN_DATASETS} datasets and 2 models scored on all of them "
            f"(have {n_datasets} datasets, {k} models); run the same models on more datasets"
        )
    ranks = np.vstack([rankdata(-row) for row in scores.to_numpy()])  # ties share the average rank
    mean_ranks = pd.Series(ranks.mean(axis=0), index=scores.columns).sort_values()
    friedman_p = float(friedmanchisquare(*ranks.T).pvalue) if k >= 3 else None
    q_alpha = float(studentized_range.ppf(1 - alpha, k, np.inf)) / math.sqrt(2)
    cd = q_alpha * math.sqrt(k * (k + 1) / (6 * n_datasets))
    return {
        "datasets": list(scores.index),
        "ranks": {name: float(rank) for name, rank in mean_ranks.items()},
        "friedman_p": friedman_p,
        "critical_difference": cd,
        "alpha": alpha,
        "cliques": cliques(mean_ranks, cd),
    }


def cliques(mean_ranks: pd.Series, cd: float) -> list[list[str]]:
    """Maximal runs of models (in rank order) whose ranks lie within one CD of each other: the bars of the diagram."""
    names, values = list(mean_ranks.index), mean_ranks.to_numpy()
    found: list[list[str]] = []
    for i in range(len(names)):
        j = i
        while j + 1 < len(names) and values[j + 1] - values[i] < cd:
            j += 1
        if j > i and not any(set(names[i : j + 1]) <= set(c) for c in found):
            found.append(names[i : j + 1])
    return found


def verdict(result: dict) -> str:
    best, second = list(result["ranks"].items())[:2]
    if result["friedman_p"] is not None and result["friedman_p"] >= result["alpha"]:
        return f"no model ranks differently from the others over {len(result['datasets'])} datasets (Friedman p = " + (
            f"{result['friedman_p']:.3f})"
        )
    if second[1] - best[1] >= result["critical_difference"]:
        return f"{best[0]} ranks best, ahead of every other model by more than the critical difference"
    return f"{best[0]} ranks best, but not distinguishable from {second[0]} (within the critical difference)"


def cd_diagram(result: dict) -> go.Figure:
    """Average ranks on one axis (1 = best, left), a bar over each group of indistinguishable models, the CD shown."""
    ranks = result["ranks"]
    names, values = list(ranks), list(ranks.values())
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=values,
            y=[0] * len(values),
            mode="markers+text",
            text=names,
            textposition=["top center" if i % 2 == 0 else "bottom center" for i in range(len(names))],
            marker={"size": 10},
            hovertemplate="%{text}: average rank %{x:.2f}<extra></extra>",
            showlegend=False,
        )
    )
    for level, clique in enumerate(result["cliques"], start=1):
        low, high = ranks[clique[0]], ranks[clique[-1]]
        figure.add_shape(type="line", x0=low, x1=high, y0=-0.25 * level, y1=-0.25 * level, line={"width": 5})
    cd = result["critical_difference"]
    figure.add_shape(type="line", x0=1, x1=1 + cd, y0=1, y1=1, line={"width": 3, "color": "firebrick"})
    figure.add_annotation(x=1 + cd / 2, y=1.15, text=f"CD = {cd:.2f} (α = {result['alpha']})", showarrow=False)
    figure.update_xaxes(title="average rank (1 = best)", range=[0.5, len(names) + 0.5], dtick=1)
    figure.update_yaxes(visible=False, range=[-0.3 * (len(result["cliques"]) + 1), 1.4])
    figure.update_layout(title=f"Critical-difference diagram over {len(result['datasets'])} datasets", height=360)
    return figure
