"""The dashboard's frame: explore the dataset, rank runs, inspect labels, try an image, train.

``streamlit run streamlit_app.py`` runs it (``make dashboard``).

Reads only the dataset and results formats. ``DASHBOARD_DATA`` (default ``data``) holds dataset folders,
``RESULTS_DIR`` (default ``results``) the runs. This file is the frame: the sidebar and the navigation; each page is
one module in ``dashboard/pages/`` and what it computes lives in ``dashboard/logic/``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import streamlit as st

import benchmarks.models.torch_first  # noqa: F401, I001  (PyTorch before TensorFlow in one process)
from benchmarks.data.dataset import Dataset
from benchmarks.errors import BenchmarkError
from dashboard.caching import cached_dataset
from dashboard.logic import datasets, leaderboard
from dashboard.pages import (
    dataset,
    frameworks,
    learning_curves,
    per_class,
    report,
    robustness,
    train,
    try_image,
    tuning,
)
from dashboard.pages import leaderboard as leaderboard_page

PAGES = {  # title -> page module (its URL is the title, lower-case, dashes for spaces)
    "Dataset": dataset,
    "Leaderboard": leaderboard_page,
    "Per-class analysis": per_class,
    "Try an image": try_image,
    "Frameworks": frameworks,
    "Tuning": tuning,
    "Robustness": robustness,
    "Images needed": learning_curves,
    "Report": report,
}
if os.environ.get("DASHBOARD_READONLY") != "1":  # a shared deployment shows results and trains nothing
    PAGES["Train"] = train


def sidebar() -> tuple[Dataset | None, Path]:
    st.sidebar.title("imgbench")
    results = Path(st.sidebar.text_input("results folder", str(leaderboard.DEFAULT_RESULTS)))
    choices = datasets.find_datasets()
    if not choices:
        st.sidebar.warning(f"no datasets under {datasets.DEFAULT_DATA_ROOT}/ — run `make demo` or import one")
        return None, results
    chosen = st.sidebar.selectbox("dataset", choices, format_func=lambda p: p.name)
    stamp = (chosen / "labels.csv").stat().st_mtime if (chosen / "labels.csv").is_file() else 0.0
    loaded, error = cached_dataset(str(chosen), stamp)
    if error:
        st.sidebar.error(error)
    return loaded, results


def render_safely(render, loaded: Dataset, results: Path) -> None:
    """A damaged file shows as one message in the page; the traceback of anything unforeseen goes to the server log."""
    try:
        render(loaded, results)
    except BenchmarkError as exc:
        st.error(str(exc))
    except Exception as exc:  # Streamlit's own rerun/stop signals are BaseExceptions and pass through
        logging.getLogger("imgbench.dashboard").exception("page failed")
        st.error(f"this page could not be shown: {exc.__class__.__name__}: {exc} (details in the server log)")


def main() -> None:
    st.set_page_config(page_title="imgbench", layout="wide")
    loaded, results = sidebar()
    if loaded is None:
        st.title("imgbench")
        st.write("Choose a dataset in the sidebar (build the default one with `make demo`).")
        return

    def runner(page):
        return lambda: render_safely(page.render, loaded, results)

    first = st.session_state.get("page", "Dataset")  # the page shown when the URL names none
    pages = [
        st.Page(runner(page), title=title, url_path=title.lower().replace(" ", "-"), default=title == first)
        for title, page in PAGES.items()
    ]
    st.navigation(pages).run()
