"""What the pages share and Streamlit caches: datasets, image facts, loaded models, pooled seeds, ease tables."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

import benchmarks.models.torch_first  # noqa: F401, I001  (PyTorch before TensorFlow in one process)
from benchmarks.data.dataset import Dataset
from benchmarks.evaluation.results import load_run
from benchmarks.serving.predictors import load_warm_predictor
from dashboard.logic import datasets, leaderboard, per_class


@st.cache_data(show_spinner=False)
def cached_dataset(path: str, modified: float) -> tuple[Dataset | None, str | None]:
    """``modified`` (labels.csv mtime) is part of the cache key, so an edited dataset is reloaded."""
    return datasets.load_dataset_safely(Path(path))


@st.cache_data(show_spinner="reading image headers…")
def cached_image_facts(path: str, modified: float):
    from benchmarks.data.eda import scan_images

    dataset, _ = datasets.load_dataset_safely(Path(path))
    return scan_images(dataset)


@st.cache_resource(show_spinner="loading model…")
def cached_predictor(run_path: str):
    """Loaded and warmed up once, so the latency shown is a steady-state one (not graph tracing). The runtime is
    ``SERVING_RUNTIME`` (native, or openvino for fastai and Keras), as in the API."""
    return load_warm_predictor(load_run(run_path))


@st.cache_data(show_spinner="pooling seeds: bootstrap over seeds and test images…", max_entries=8)
def cached_seed_groups(results: str, dataset_path: str, signature: tuple):
    """``signature`` (run.json / metrics.json times) keys the cache, so new or re-evaluated runs show at once."""
    dataset, _ = datasets.load_dataset_safely(Path(dataset_path))
    return leaderboard.seed_groups(Path(results), dataset)


@st.cache_data(show_spinner="paired bootstrap per label…", max_entries=8)
def cached_best_per_label(results: str, dataset_path: str, signature: tuple):
    dataset, _ = datasets.load_dataset_safely(Path(dataset_path))
    return per_class.best_per_label_table(Path(results), dataset)


@st.cache_resource(show_spinner="reading the training images' features…")
def cached_novelty_check(dataset_path: str):
    """None when the lite0 features the linear probe caches are not there (never computed here, on a click)."""
    from benchmarks.models.novelty import NoveltyCheck

    try:
        return NoveltyCheck(datasets.load_dataset_safely(Path(dataset_path))[0])
    except FileNotFoundError:
        return None


@st.cache_data(show_spinner="counting code, options and install sizes…", max_entries=4)
def ease_table_cached(results: str, dataset_path: str, signature: tuple):
    from benchmarks.models.ease import ease_table

    dataset, _ = datasets.load_dataset_safely(Path(dataset_path))
    return ease_table(Path(results), dataset)


@st.cache_data(show_spinner="learning curves: each size against the probe, draw by draw…", max_entries=4)
def cached_learning_curves(results: str, dataset_path: str, signature: tuple) -> dict:
    """What the Images-needed page shows (the paired comparisons take seconds), keyed by the runs' file times."""
    from benchmarks.runner.learning_curves import learning_points, learning_summary

    dataset, _ = datasets.load_dataset_safely(Path(dataset_path))
    return learning_summary(learning_points(Path(results), dataset.fingerprint, len(dataset.rows("train"))))
