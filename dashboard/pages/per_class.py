"""Per-class page: ROC and PR per label, AUC heatmap, the best model per label, and the threshold explorer."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

import benchmarks.models.torch_first  # noqa: F401, I001  (PyTorch before TensorFlow in one process)
from benchmarks.data.dataset import Dataset
from benchmarks.errors import BenchmarkError
from benchmarks.evaluation import charts
from benchmarks.evaluation.evaluate import contamination_note
from benchmarks.evaluation.groups import run_names
from benchmarks.evaluation.label_verdicts import MULTIPLE_COMPARISONS
from dashboard.caching import cached_best_per_label
from dashboard.logic import leaderboard, per_class


def render(dataset: Dataset, results: Path) -> None:
    st.header("Per-class analysis")
    runs = leaderboard.runs_on(results, dataset)
    if not runs:
        st.info("no finished runs on this dataset yet")
        return
    ids = [r.run_id for r in runs]
    names = run_names(runs)  # readable names everywhere on the page; the id is in the leaderboard beside its name
    chosen = st.multiselect("runs", ids, default=per_class.default_curve_runs(runs), format_func=names.get)
    label = st.selectbox("label", dataset.labels)
    chosen_runs = [r for r in runs if r.run_id in chosen]
    curves = {}
    for run in chosen_runs:
        try:
            curves[names[run.run_id]] = per_class.curves(run)
        except BenchmarkError as exc:
            st.warning(str(exc))
    left, right = st.columns(2)
    left.plotly_chart(charts.roc_overlay(curves, label), width="stretch")
    right.plotly_chart(charts.pr_overlay(curves, label), width="stretch")
    reliabilities = {}
    for run in chosen_runs:
        try:
            reliabilities[names[run.run_id]] = per_class.reliability(run)
        except BenchmarkError:
            pass  # already named above
    st.plotly_chart(charts.reliability_overlay(reliabilities, label), width="stretch")
    st.caption(
        "Can the scores be read as probabilities? Each point is one of ten equal-mass bins of the label's test "
        "scores; on the diagonal, a score of 0.7 means 70 % of such images carry the label. A Teachable Machine "
        "softmax shares its mass between labels, so it sits below the diagonal where images carry several."
    )
    st.plotly_chart(charts.auc_heatmap(per_class.auc_matrix(runs).rename(columns=names)), width="stretch")
    st.subheader("Best model per label — and which others are not distinguishable from it")
    st.caption(
        "test ROC-AUC; seeds of one model pooled; a tie when the paired bootstrap test of the difference does not "
        f"reject it after correction — {MULTIPLE_COMPARISONS}"
    )
    best, unsampled = cached_best_per_label(str(results), str(dataset.root), leaderboard.results_signature(results))
    st.dataframe(best, width="stretch", hide_index=True)
    if unsampled:
        st.caption(
            f"left out: {len(unsampled)} run(s) evaluated before per-label samples were stored "
            f"({', '.join(unsampled[:4])}{', …' if len(unsampled) > 4 else ''}); "
            "`python -m benchmarks evaluate RUN` stores them (about 20 s a run), then they count here"
        )
    if not chosen_runs:
        return
    st.subheader("Threshold explorer")
    run = st.selectbox("run", chosen_runs, format_func=lambda r: names[r.run_id])
    threshold_explorer(run, dataset, label)


ERRORS_SHOWN = 16


@st.fragment
def threshold_explorer(run, dataset: Dataset, label: str) -> None:
    """One threshold (the label's, tuned on valid until moved) drives the counts, both confusion views and the
    error browser; a fragment, so moving it reruns only this part of the page."""
    try:
        per_label = per_class.label_results(run)
        if contamination := contamination_note(run):
            st.error(f"{run.run_id}: {contamination}")
        tuned = per_label.get(label, {}).get("threshold", 0.5)
        if per_label.get(label, {}).get("threshold_note"):
            st.warning(f"{label}: {per_label[label]['threshold_note']}")
        threshold = st.slider(f"threshold for {label} (tuned on valid: {tuned:.3f})", 0.0, 1.0, float(tuned), 0.01)
        st.dataframe(per_class.threshold_effect(run, dataset, label, threshold))
        decisions = per_class.test_decisions(run, dataset, label, threshold)
    except BenchmarkError as exc:
        st.error(str(exc))
        return
    at = f"{label} at {threshold:.2f}, the others at their tuned thresholds"
    st.plotly_chart(charts.confusion_grids(decisions["counts"], f"Test confusion — {at}"), width="stretch")
    st.plotly_chart(
        charts.label_confusion_heatmap(decisions["mixed"], dataset.labels, f"Which labels it mixes up — {at}"),
        width="stretch",
    )
    st.subheader("Error browser")
    errors = decisions["errors"]
    shown = st.radio("show", ["false positives", "false negatives", "both"], horizontal=True, key="error-kind")
    if shown != "both":
        errors = errors[errors["error"] == ("FP" if shown.startswith("false p") else "FN")]
    st.caption(
        f"{len(errors)} test image(s) with a {label} error at {threshold:.2f} (run {run.run_id}); "
        f"false positives by highest score first, false negatives by lowest; the first {ERRORS_SHOWN} shown"
    )
    columns = st.columns(4)
    for i, row in enumerate(errors.head(ERRORS_SHOWN).itertuples()):
        columns[i % 4].image(
            str(dataset.root / row.image),
            caption=f"{row.error} {label} {row.score:.2f} · {Path(row.image).name} · true: {row.true} · "
            f"predicted: {row.predicted}",
        )
