"""Data-efficiency page: test macro AUC against training images per label for each model, from runs on nested
subsets of this dataset, and from which size each model is ahead of the linear probe."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from benchmarks.data.dataset import Dataset
from benchmarks.evaluation.charts import learning_curves_chart
from benchmarks.runner.learning_curves import (
    ALL,
    against_the_bar,
    ahead_line,
    curve_table,
    curves_for_chart,
    first_ahead,
    learning_points,
)


def render(dataset: Dataset, results: Path) -> None:
    st.header("How many images per label do I need?")
    st.caption(
        "Runs on nested, label-stratified subsets of this dataset's train split (valid and test whole, so every "
        "point is scored on the same test images): mean test macro AUC, the band the range over draws and seeds. "
        "Against the linear probe each size is compared draw by draw with the paired bootstrap."
    )
    curves = learning_points(results, dataset.fingerprint, len(dataset.rows("train")))
    if not any(point.per_label != ALL for points in curves.values() for point in points):
        st.info(
            "No run on a subset of this dataset yet. Make subsets with `python -m benchmarks subset "
            f"{dataset.root} OUT --per-label N --draw D` and train on them, or run a grid with "
            "`subsets = {per-label = [...], draws = [...]}` (benchmarks/grids/data-efficiency.toml does it for "
            "StampScenes, ~3 h on 2 cores; docs/grids.md)."
        )
        return
    st.plotly_chart(learning_curves_chart(curves_for_chart(curves)), width="stretch")
    comparisons = against_the_bar(curves)
    for model, size in first_ahead(comparisons).items():
        st.markdown(f"- {ahead_line(model, size)}")
    st.dataframe(_sizes_as_text(pd.DataFrame(curve_table(curves))), hide_index=True, width="stretch")
    st.caption(
        "kept its start: runs in which keep-best found no fine-tuning epoch ahead of its starting weights (for "
        "LP-FT, the probe's head) beyond the noise of the valid images, and ended on them."
    )
    if comparisons:
        st.subheader("Against the linear probe on the same subsets")
        st.dataframe(_sizes_as_text(pd.DataFrame(comparisons).round(3)), hide_index=True, width="stretch")


def _sizes_as_text(table: pd.DataFrame) -> pd.DataFrame:
    """'per label' mixes sizes and 'all': one type, so the table's Arrow conversion keeps it as it is."""
    return table.astype({"per label": str})
