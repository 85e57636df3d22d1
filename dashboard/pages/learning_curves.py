"""Data-efficiency page: test macro AUC against training images per label for each model, from runs on nested
subsets of this dataset, and from which size each model is ahead of the linear probe."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from benchmarks.data.dataset import Dataset
from benchmarks.evaluation.charts import learning_curves_chart
from benchmarks.runner.learning_curves import ahead_line
from dashboard.caching import cached_learning_curves
from dashboard.logic import leaderboard


def render(dataset: Dataset, results: Path) -> None:
    st.header("How many images per label do I need?")
    st.caption(
        "Runs on nested, label-stratified subsets of this dataset's train split (valid and test whole, so every "
        "point is scored on the same test images): mean test macro AUC, the band the range over draws and seeds. "
        "Against the linear probe each size is compared draw by draw with the paired bootstrap."
    )
    shown = cached_learning_curves(str(results), str(dataset.root), leaderboard.results_signature(results))
    if not shown["subsets"]:
        st.info(
            "No run on a subset of this dataset yet. Make subsets with `python -m benchmarks subset "
            f"{dataset.root} OUT --per-label N --draw D` and train on them, or run a grid with "
            "`subsets = {per-label = [...], draws = [...]}` (benchmarks/grids/data-efficiency.toml does it for "
            "StampScenes, ~3 h on 2 cores; docs/grids.md)."
        )
        return
    st.plotly_chart(learning_curves_chart(shown["chart"]), width="stretch")
    for model, size in shown["first_ahead"].items():
        st.markdown(f"- {ahead_line(model, size)}")
    st.dataframe(_sizes_as_text(pd.DataFrame(shown["table"])), hide_index=True, width="stretch")
    st.caption(
        "kept its start: runs in which keep-best found no fine-tuning epoch ahead of its starting weights (for "
        "LP-FT, the probe's head) beyond the noise of the valid images, and ended on them."
    )
    if shown["comparisons"]:
        st.subheader("Against the linear probe on the same subsets")
        st.dataframe(_sizes_as_text(pd.DataFrame(shown["comparisons"]).round(3)), hide_index=True, width="stretch")


def _sizes_as_text(table: pd.DataFrame) -> pd.DataFrame:
    """'per label' mixes sizes and 'all': one type, so the table's Arrow conversion keeps it as it is."""
    return table.astype({"per label": str})
