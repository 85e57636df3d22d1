"""Frameworks page: ease of use, measured."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

import benchmarks.models.torch_first  # noqa: F401, I001  (PyTorch before TensorFlow in one process)
from benchmarks.data.dataset import Dataset
from dashboard.caching import ease_table_cached
from dashboard.logic import leaderboard


def render(dataset: Dataset, results: Path) -> None:
    st.header("Frameworks: ease of use, measured")
    st.caption(
        "Numbers come from commands: code and options counted from the source, install size from the installed "
        "packages, times, memory, size and latency from the runs on this dataset; import times from "
        "`python -m benchmarks ease --measure`. The text rows are each family's declared facts; opinions say so."
    )
    from benchmarks.models.ease import NUMERIC_ROWS

    table = ease_table_cached(str(results), str(dataset.root), leaderboard.results_signature(results))
    st.dataframe(table.loc[NUMERIC_ROWS], width="stretch")
    for column in table.columns:
        with st.expander(column):
            for label in table.index:
                if label not in NUMERIC_ROWS and table.loc[label, column] != "—":
                    st.markdown(f"**{label}**: {table.loc[label, column]}")
            for pitfall in leaderboard.ease_pitfalls(column):
                st.markdown(f"- {pitfall['what']} → {pitfall['workaround']} ([link]({pitfall['link']}))")
