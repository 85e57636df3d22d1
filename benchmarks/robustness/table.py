"""Robustness of several runs side by side: one row per run, corruption errors against a baseline run, paired
comparisons of the mean under corruption (Benjamini-Hochberg across the pairs), and a corruption × severity matrix.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np

from benchmarks.errors import RunError
from benchmarks.evaluation.groups import run_names, verdict
from benchmarks.evaluation.label_verdicts import FDR, bootstrap_p_value
from benchmarks.evaluation.metrics import confidence_interval, with_interval
from benchmarks.evaluation.results import Run
from benchmarks.evaluation.robustness import (
    corrupted_sets,
    corruption_errors,
    mean_under_corruption,
    read_robustness,
)
from benchmarks.serving.predictors import can_predict, why_no_model

BASELINE_KIND = "linear_probe"  # ImageNet-C's AlexNet: the simplest model on the same features


def collect(runs: list[Run], baseline: Run | None = None) -> dict:
    """Each run's robustness record (or why it has none), the baseline (given, else the newest scored linear
    probe among ``runs``) and every run's corruption errors against it."""
    names = run_names(runs)
    rows, missing = [], []
    for run in runs:
        try:
            record = read_robustness(run)
        except RunError as error:
            missing.append({"run": names[run.run_id], "why": str(error)})
            continue
        if record is None:
            why = why_no_model(run) if not can_predict(run) else "not scored yet: python -m benchmarks robustness RUN"
            missing.append({"run": names[run.run_id], "why": why})
            continue
        rows.append({"run": names[run.run_id], "run_obj": run, "record": record})
    base = _baseline_row(rows, baseline)
    for row in rows:
        row["errors"] = corruption_errors(row["record"], base["record"]) if base else None
    return {"rows": rows, "missing": missing, "baseline": base["run"] if base else None}


def _baseline_row(rows: list[dict], baseline: Run | None) -> dict | None:
    if baseline is not None:
        match = [row for row in rows if row["run_obj"].path.resolve() == baseline.path.resolve()]
        if not match:
            raise RunError(f"{baseline.path}: the baseline has no robustness scores; score it with the others")
        return match[0]
    probes = [row for row in rows if row["run_obj"].kind == BASELINE_KIND]
    return max(probes, key=lambda row: str(row["record"].get("created"))) if probes else None


def pairwise(rows: list[dict]) -> list[dict]:
    """Every pair of runs: A minus B in mean macro AUC under the corruption sets both have, with a 95 % CI over the
    same resampled test images; a verdict only where the Benjamini-Hochberg adjusted p-value is below 5 %."""
    from scipy.stats import false_discovery_control  # here: scipy.stats costs a second to import

    out = []
    for a, b in combinations(rows, 2):
        shared = corrupted_sets(a["record"]) & corrupted_sets(b["record"])
        if not shared:
            continue
        (point_a, mean_a), (point_b, mean_b) = (mean_under_corruption(r["record"], shared) for r in (a, b))
        point, differences = point_a - point_b, mean_a - mean_b
        out.append({"a": a["run"], "b": b["run"], "sets": len(shared), "difference": point,
                    "ci": confidence_interval(differences), "p": bootstrap_p_value(differences)})  # fmt: skip
    if out:
        for entry, adjusted in zip(out, false_discovery_control([e["p"] for e in out], method="bh")):
            entry["p_adjusted"] = float(adjusted)
            entry["verdict"] = (
                verdict(entry["ci"], entry["a"], entry["b"], False) if adjusted < FDR else "not distinguishable"
            )
    return out


def summary_table(collected: dict) -> list[dict]:
    """One row per scored run: clean and mean-under-corruption macro AUC, relative robustness, mCE and relative
    mCE against the baseline (each 'value [low, high]')."""
    table = []
    for row in collected["rows"]:
        summary, errors = row["record"]["summary"], row["errors"]
        entry = {
            "run": row["run"],
            "runtime": row["record"]["runtime"],
            "clean AUC": _shown(summary["clean"]),
            "mean corrupted AUC": _shown(summary.get("mean_corrupted")),
            "relative (corrupted / clean)": _shown(summary.get("relative")),
        }
        if errors is not None:
            entry["mCE vs baseline"] = _shown(errors["mce"])
            entry["relative mCE"] = _shown(errors["relative_mce"])
        table.append(entry)
    return table


def _shown(figure: dict | None) -> str:
    if not figure or figure.get("value") is None or not np.isfinite(figure["value"]):
        return "—"
    return with_interval(figure["value"], figure["ci"])


def set_matrix(collected: dict) -> tuple[list[str], list[str], np.ndarray]:
    """(set names, run names, macro AUC (sets × runs), NaN where a run lacks the set): for the heatmap and the
    per-set table. Sets in corruption order, then severity."""
    rows = collected["rows"]
    sets: list[str] = []
    for row in rows:
        sets += [n for n in row["record"]["summary_sets"] if n not in sets]
    values = np.array([[row["record"]["points"].get(name, np.nan) for row in rows] for name in sets], dtype=np.float64)
    return sets, [row["run"] for row in rows], values


def corruption_matrix(collected: dict, severity: int | None = None):
    """Macro AUC, corruptions (rows, in the suite's order) × runs: at one ``severity``, or averaged over the
    severities each run was scored at (None). NaN where a run lacks the corruption. For the heatmaps."""
    import pandas as pd

    from benchmarks.data.corruptions import corruptions

    sets, names, values = set_matrix(collected)
    table = pd.DataFrame(values, index=sets, columns=names)
    if severity is not None:
        table = table[[int(name.rsplit("-", 1)[1]) == severity for name in sets]]
    table = table.groupby([name.rsplit("-", 1)[0] for name in table.index]).mean()
    return table.reindex([name for name in corruptions() if name in table.index])


def scored_severities(collected: dict) -> list[int]:
    return sorted({s for row in collected["rows"] for s in row["record"].get("severities", [])})
