"""Try-an-image page: every saved model scores the same uploaded or test image, side by side."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

import benchmarks.models.torch_first  # noqa: F401, I001  (PyTorch before TensorFlow in one process)
from benchmarks.data.dataset import Dataset
from benchmarks.data.images import open_rgb
from benchmarks.errors import BenchmarkError
from benchmarks.evaluation import charts
from benchmarks.evaluation.evaluate import contamination_note
from benchmarks.evaluation.groups import run_names
from benchmarks.serving.predictors import runtime_of
from benchmarks.serving.scoring import score, thresholds_of, untuned_thresholds
from dashboard.caching import cached_image_facts, cached_novelty_check, cached_predictor
from dashboard.logic import datasets, leaderboard


def novelty_hint(dataset: Dataset, image) -> None:
    """Out-of-distribution hint: how far the image is from the nearest training image, in frozen features."""
    check = cached_novelty_check(str(dataset.root))
    if check is None:
        st.caption(
            "no out-of-distribution hint: it reads the lite0 features the linear probe caches "
            f"(`python -m benchmarks baseline linear-probe --dataset {dataset.root}`)"
        )
        return
    novelty = check.check(image)
    (st.warning if novelty.unlike_training else st.caption)(novelty.message())


TRY_REPEATS = 5  # the latency shown is the median of this many calls on the uploaded image


def render(dataset: Dataset, results: Path) -> None:
    st.header("Try an image: every saved model side by side")
    every_run = leaderboard.runs_on(results, dataset)
    runs = leaderboard.predictable_runs(every_run)
    without = leaderboard.runs_without_model(every_run)
    if not runs:
        st.info(
            "no saved model on this dataset yet — `make demo` trains fastai, Keras, the linear probe and the TM "
            "replica; `python -m cloud_baselines tm-eval` / `vertex-eval` add Teachable Machine and AutoML exports"
        )
        return
    if without:
        st.caption("not shown (no model to run): " + "; ".join(f"{run_id}: {reason}" for run_id, reason in without))
    upload = st.file_uploader("upload an image", type=["jpg", "jpeg", "png", "gif", "bmp", "webp", "tif", "tiff"])
    test_images = list(dataset.rows("test")["image"])
    picked = st.selectbox("…or pick a test image", ["(none)", *test_images[:200]], key="test_image")
    source = None  # (image, split, labels) when the image is one of the dataset's
    try:
        if upload is not None:
            image = open_rgb(upload, name=upload.name)
            modified = (dataset.root / "labels.csv").stat().st_mtime
            source = datasets.dataset_image_with_bytes(
                dataset, cached_image_facts(str(dataset.root), modified), upload.getvalue()
            )
        elif picked != "(none)":
            image = open_rgb(dataset.root / picked)
            source = datasets.dataset_image(dataset, picked)
        else:
            return
    except BenchmarkError as exc:
        st.error(str(exc))
        return
    outcomes = []  # every model predicts before anything is drawn, so the browser's rendering does not slow the timings
    with st.spinner("every model predicts…"):
        for run in runs:
            try:
                thresholds, warning = thresholds_of(run), None
            except BenchmarkError as exc:  # damaged metrics.json: the model still predicts, its thresholds are unknown
                thresholds, warning = untuned_thresholds(run), str(exc)
            try:
                prediction = score(cached_predictor(str(run.path)), [image], thresholds, repeats=TRY_REPEATS)
                outcomes.append((run, prediction, warning))
            except BenchmarkError as exc:
                outcomes.append((run, None, str(exc)))
    if source:
        caption = f"{source[0]} ({source[1]}) — true labels: {' '.join(source[2]) or '(none)'}"
    else:
        caption = "uploaded (not in the dataset: no true labels)"
    st.image(image, width=256, caption=caption)
    novelty_hint(dataset, image)
    columns = st.columns(min(len(runs), 3))
    names = run_names([run for run, _, _ in outcomes])
    for i, (run, prediction, problem) in enumerate(outcomes):
        column = columns[i % len(columns)]
        if prediction is None:
            column.error(f"{run.run_id}: {problem}")
            continue
        if problem:
            column.warning(problem)
        if not prediction.thresholds.tuned:
            column.caption(prediction.thresholds.note)
        predicted = prediction.predicted(0)
        column.markdown(f"**{names[run.run_id]}**", help=run.run_id)
        column.plotly_chart(
            charts.score_bars(
                prediction.label_scores(0), prediction.thresholds.values, truth=set(source[2]) if source else None
            ),
            width="stretch",
            config={"displayModeBar": False},
            key=f"scores-{run.run_id}",
        )
        runtime = runtime_of(cached_predictor(str(run.path)))
        latency = f"{prediction.latency_ms:.0f} ms (median of {TRY_REPEATS}, {runtime})"
        column.write(f"predicted: **{' '.join(predicted) or '(none)'}** · {latency}")
        if source:
            truth = set(source[2])
            right, missed, wrong = (
                sorted(truth & set(predicted)),
                sorted(truth - set(predicted)),
                sorted(set(predicted) - truth),
            )
            column.caption(
                f"right: {' '.join(right) or '—'} · missed: {' '.join(missed) or '—'} · wrong: {' '.join(wrong) or '—'}"
            )
        if run.params.get("single_label_by_construction"):
            column.caption("softmax over classes: co-occurring labels share one probability")
        if contamination := contamination_note(run):
            column.error(contamination)
