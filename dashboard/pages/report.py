"""Report page: the self-contained HTML report for a written report."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

import benchmarks.models.torch_first  # noqa: F401, I001  (PyTorch before TensorFlow in one process)
from benchmarks.data.dataset import Dataset
from dashboard.caching import ease_table_cached
from dashboard.logic import leaderboard


def render(dataset: Dataset, results: Path) -> None:
    st.header("Report")
    st.write(
        "One self-contained HTML file (EDA, leaderboard, per-class ROC/AUC, paired comparisons, tuning, robustness, "
        "learning curves) for a written report; "
        f"the same as `python -m benchmarks report {dataset.root}`."
    )
    if st.button("build the report"):
        from benchmarks.evaluation.report import build_report
        from benchmarks.report_sections import upper_sections

        with st.spinner("building…"):
            ease = ease_table_cached(str(results), str(dataset.root), leaderboard.results_signature(results))
            sections, figures = upper_sections(results, dataset, ease)
            st.session_state["report_html"] = build_report(dataset, results, sections, figures)
    if "report_html" in st.session_state:
        st.download_button(
            "download report.html",
            st.session_state["report_html"],
            file_name=f"report-{dataset.name.lower()}.html",
            mime="text/html",
        )
