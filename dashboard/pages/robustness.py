"""Robustness page: the served models under common corruptions — a corruption × model heatmap, the summary with
corruption errors against the probe, and the paired verdicts on the mean under corruption."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from benchmarks.data.dataset import Dataset
from benchmarks.evaluation.charts import auc_heatmap
from benchmarks.robustness.table import collect, corruption_matrix, pairwise, scored_severities, summary_table
from dashboard.logic import leaderboard

MEAN = "mean over severities"


def render(dataset: Dataset, results: Path) -> None:
    st.header("Robustness: blurry, dark, noisy or compressed photos")
    st.caption(
        "Each run's served model (the API's, through the same runtime) on the test split under ImageNet-C-style "
        "corruptions from albumentations, the same pixels for every model. Test macro ROC-AUC from the shared "
        "evaluator [95% CI over its resampled test images]; CE/mCE: errors relative to the linear probe (below 1 = "
        "more robust). docs/evaluation.md (Robustness) says how the corruptions are made."
    )
    collected = collect(leaderboard.runs_on(results, dataset))
    if not collected["rows"]:
        st.info(
            "No run on this dataset has been scored under corruption yet. Score the demo's models with `make "
            f"robustness` (~10 min on 2 cores), or any runs with `python -m benchmarks robustness {results}/RUN ...`."
        )
        _missing(collected)
        return
    choice = st.radio("severity", [MEAN, *map(str, scored_severities(collected))], horizontal=True)
    severity = None if choice == MEAN else int(choice)
    title = f"Test macro ROC-AUC per corruption ({choice if severity is None else f'severity {severity}'}) and run"
    st.plotly_chart(auc_heatmap(corruption_matrix(collected, severity), title=title), width="stretch")
    st.dataframe(pd.DataFrame(summary_table(collected)), hide_index=True, width="stretch")
    if collected["baseline"] is None:
        st.caption("no linear probe scored under corruption here: no corruption error (CE/mCE)")
    pairs = pairwise(collected["rows"])
    if pairs:
        st.subheader("Which model holds up better? (mean under corruption, paired)")
        st.caption(
            "One run per model: these intervals see test-image noise only. Benjamini-Hochberg across the pairs; a "
            "verdict only where the adjusted p-value is below 5%."
        )
        for p in pairs:
            st.markdown(
                f"- {p['a']} − {p['b']} ({p['sets']} sets): {p['difference']:+.3f} [{p['ci'][0]:+.3f}, "
                f"{p['ci'][1]:+.3f}], adjusted p {p['p_adjusted']:.3f} → **{p['verdict']}**"
            )
    _missing(collected)


def _missing(collected: dict) -> None:
    for entry in collected["missing"]:
        st.caption(f"no row: {entry['run']}: {entry['why']}")
