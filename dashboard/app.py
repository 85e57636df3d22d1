"""``streamlit run dashboard/app.py``: explore the dataset, rank runs, inspect labels, try an image.

Reads only the dataset and results formats. ``DASHBOARD_DATA`` (default ``data``) holds dataset folders,
``RESULTS_DIR`` (default ``results``) the runs. Page logic lives in ``dashboard/logic.py``.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import streamlit as st
from joblib import parallel_config

import benchmarks.models.torch_first  # noqa: F401, I001  (PyTorch before TensorFlow in one process)
from benchmarks.data.dataset import Dataset
from benchmarks.data.eda_report import image_figures, label_figures
from benchmarks.data.images import open_rgb
from benchmarks.errors import BenchmarkError
from benchmarks.evaluation import charts, metrics
from benchmarks.evaluation.evaluate import contamination_note
from benchmarks.evaluation.groups import params_diff, run_names
from benchmarks.evaluation.leaderboard import latency_notes, readable_groups
from benchmarks.evaluation.results import load_run
from benchmarks.models.registry import trainable_families
from benchmarks.serving.predictors import load_warm_predictor, runtime_of
from benchmarks.serving.scoring import score, thresholds_of, untuned_thresholds
from dashboard import logic

metrics.BOOTSTRAP_BACKEND = "threading"  # no worker processes inside the server: they outlive it (issue 14)


@st.cache_data(show_spinner=False)
def cached_dataset(path: str, modified: float) -> tuple[Dataset | None, str | None]:
    """``modified`` (labels.csv mtime) is part of the cache key, so an edited dataset is reloaded."""
    return logic.load_dataset_safely(Path(path))


@st.cache_data(show_spinner="reading image headers…")
def cached_image_facts(path: str, modified: float):
    from benchmarks.data.eda import scan_images

    dataset, _ = logic.load_dataset_safely(Path(path))
    return scan_images(dataset)


@st.cache_resource(show_spinner="loading model…")
def cached_predictor(run_path: str):
    """Loaded and warmed up once, so the latency shown is a steady-state one (not graph tracing). The runtime is
    ``SERVING_RUNTIME`` (native, or openvino for fastai and Keras), as in the API."""
    return load_warm_predictor(load_run(run_path))


@st.cache_data(show_spinner="pooling seeds: bootstrap over seeds and test images…", max_entries=8)
def cached_seed_groups(results: str, dataset_path: str, signature: tuple):
    """``signature`` (run.json / metrics.json times) keys the cache, so new or re-evaluated runs show at once."""
    dataset, _ = logic.load_dataset_safely(Path(dataset_path))
    return logic.seed_groups(Path(results), dataset)


@st.cache_data(show_spinner="paired bootstrap per label…", max_entries=8)
def cached_best_per_label(results: str, dataset_path: str, signature: tuple):
    dataset, _ = logic.load_dataset_safely(Path(dataset_path))
    return logic.best_per_label_table(Path(results), dataset)


def sidebar() -> tuple[Dataset | None, Path]:
    st.sidebar.title("imgbench")
    results = Path(st.sidebar.text_input("results folder", str(logic.DEFAULT_RESULTS)))
    choices = logic.find_datasets()
    if not choices:
        st.sidebar.warning(f"no datasets under {logic.DEFAULT_DATA_ROOT}/ — run `make demo` or import one")
        return None, results
    chosen = st.sidebar.selectbox("dataset", choices, format_func=lambda p: p.name)
    stamp = (chosen / "labels.csv").stat().st_mtime if (chosen / "labels.csv").is_file() else 0.0
    dataset, error = cached_dataset(str(chosen), stamp)
    if error:
        st.sidebar.error(error)
    return dataset, results


def page_dataset(dataset: Dataset, results: Path) -> None:
    st.header(f"Dataset — {dataset.name}")
    st.caption(dataset.info.get("description", ""))
    report = logic.eda_report(dataset)
    left, right = st.columns([1, 2])
    left.dataframe(logic.split_counts(dataset))
    if report:
        figures = label_figures(dataset, report["statistics"])
        right.plotly_chart(figures["label_frequency"], width="stretch")
        left.plotly_chart(figures["labels_per_image"], width="stretch")
        right.plotly_chart(figures["cooccurrence"], width="stretch")
        modified = (dataset.root / "labels.csv").stat().st_mtime
        sizes = image_figures(cached_image_facts(str(dataset.root), modified))["image_sizes"]
        left.plotly_chart(sizes, width="stretch")
        st.subheader("Quality checks (EDA)")
        st.dataframe(
            [{k: c.get(k) for k in ("check", "verdict", "finding", "remedy")} for c in report["checks"]],
            width="stretch",
        )
    else:
        st.info(f"no EDA report yet: `python -m benchmarks eda {dataset.root}`")
    st.subheader("Gallery")
    a, b, c = st.columns(3)
    label = a.selectbox("label", ["(any)", *dataset.labels])
    split = b.selectbox("split", ["(any)", "train", "valid", "test"])
    only_flagged = c.checkbox("only images with an issue")
    rows = logic.gallery(
        dataset,
        None if label == "(any)" else label,
        None if split == "(any)" else split,
        logic.flagged_images(report) if only_flagged else None,
    )
    if rows.empty:
        st.write("no images match")
    columns = st.columns(6)
    for i, (rel, labels, split_name) in enumerate(zip(rows["image"], rows["labels"], rows["split"])):
        columns[i % 6].image(str(dataset.root / rel), caption=f"{split_name}: {' '.join(labels) or '(none)'}")


def page_leaderboard(dataset: Dataset, results: Path) -> None:
    st.header("Leaderboard (test split, thresholds tuned on valid)")
    every_run = logic.leaderboard_table(results, dataset)
    if every_run.empty:
        st.info(f"no runs on this dataset in {results}/ yet — `make demo` trains some")
        return
    annotations, problem = logic.load_annotations(results)
    if problem:
        st.warning(problem)
    show_hidden = bool(annotations["hidden"]) and st.checkbox(f"show the {len(annotations['hidden'])} hidden run(s)")
    table = logic.annotated(every_run, annotations, show_hidden)
    if table.empty:
        st.info("every run here is hidden: tick 'show the hidden runs' above, or unhide some below")
        edit_annotations(every_run, annotations, results, expanded=True)
        return
    st.dataframe(
        logic.readable_leaderboard(table),
        width="stretch",
        hide_index=True,
        column_config={
            **logic.COLUMN_TITLES,
            **{c: st.column_config.NumberColumn(logic.COLUMN_TITLES[c], format="%.3f") for c in logic.SCORE_COLUMNS},
            # at most ~200 px (the full name on hover), so a phone's width still shows macro AUC and its CI beside it
            "name": st.column_config.TextColumn(logic.COLUMN_TITLES["name"], width="medium"),
            "latency_ms": st.column_config.NumberColumn(
                "latency ms", help="served model, one image per call, median after warm-up (docs/evaluation.md)"
            ),
            "images_per_s": st.column_config.NumberColumn("images/s", help="served model, batches of 32"),
        },
    )
    for note in latency_notes(table):
        st.caption(note)
    st.plotly_chart(charts.leaderboard_bars(table), width="stretch")
    if logic.has_latency(table):
        st.plotly_chart(charts.quality_latency_size(table), width="stretch")
    else:  # an empty chart would only show axes
        st.caption("quality vs latency: no run here has a latency yet (see above)")
    edit_annotations(every_run, annotations, results)
    with st.expander("training curves (per epoch, from each run's history)"):
        histories = logic.training_histories(results, table)
        if histories:
            picked = st.multiselect("runs", list(histories), default=list(histories)[:3])
            st.plotly_chart(charts.training_curves({name: histories[name] for name in picked}), width="stretch")
        else:
            st.write("no run here records per-epoch history (trainers do; baselines and adapters do not)")
    groups = cached_seed_groups(str(results), str(dataset.root), logic.results_signature(results))
    if len(groups):
        st.subheader("Models over seeds")
        st.caption(
            "mean ± sd over seeds [95% CI over seeds and test images]; one row per family, backbone and settings"
        )
        st.dataframe(readable_groups(groups), width="stretch", hide_index=True)
    st.subheader("Is A really better than B? (paired bootstrap on the same test images)")
    by_model = len(groups) and st.radio("compare", ["models (seeds pooled)", "runs"], horizontal=True).startswith("m")
    names = list(groups["model"] if by_model else table["run"])
    shown_name = (lambda n: n) if by_model else dict(zip(table["run"], table["name"])).get
    a, b = st.columns(2)
    choice_a = a.selectbox("A", names, index=0, format_func=shown_name)
    choice_b = b.selectbox("B", names, index=min(1, len(names) - 1), format_func=shown_name)
    if choice_a == choice_b:
        st.info("choose two different ones to compare")
        return
    if not by_model:
        differences = params_diff(load_run(results / choice_a), load_run(results / choice_b))
        st.caption(
            "how A and B differ: "
            + ("; ".join(f"{d['setting']} {d['A']} → {d['B']}" for d in differences) or "nothing but the run")
        )
    if st.button("compare"):
        from benchmarks.evaluation.groups import Group, compare_groups, find_group, group_runs

        try:
            with st.spinner("1,000 paired bootstrap resamples of the test images…"):
                if by_model:
                    pool = group_runs(logic.runs_on(results, dataset))
                    chosen = find_group(pool, choice_a), find_group(pool, choice_b)
                else:
                    chosen = tuple(Group(r, [load_run(results / r)]) for r in (choice_a, choice_b))
                result = compare_groups(*chosen)
        except BenchmarkError as exc:
            st.error(str(exc))
            return
        for metric, entry in result["metrics"].items():
            ci = entry["ci"]
            ci_text = f"[{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "undefined"
            p_better = f", P(A > B) over seed pairs {entry['p_a_better']:.2f}" if "p_a_better" in entry else ""
            difference = "undefined" if entry["difference"] is None else f"{entry['difference']:+.3f}"
            st.write(f"**{metric}**: A − B {difference}, 95% CI {ci_text}{p_better} → {entry['verdict']}")


def edit_annotations(table, annotations: dict, results: Path, expanded: bool = False) -> None:
    """Hide runs from every view of the leaderboard, or tag them; saved under the results folder."""
    names = dict(zip(table["run"], table["name"]))
    with st.expander("hide or tag runs (kept in the results folder for every visitor)", expanded=expanded):
        hidden = st.multiselect(
            "hidden runs", list(names), default=[r for r in annotations["hidden"] if r in names], format_func=names.get
        )
        left, right = st.columns([1, 2])
        run = left.selectbox("tag a run", list(names), format_func=names.get)
        tag = right.text_input("tag (empty removes it)", annotations["tags"].get(run, ""), max_chars=60)
        if st.button("save"):
            kept_elsewhere = [r for r in annotations["hidden"] if r not in names]  # other datasets' runs stay hidden
            logic.save_annotations(results, hidden + kept_elsewhere, {**annotations["tags"], run: tag.strip()})
            st.rerun()


def page_per_class(dataset: Dataset, results: Path) -> None:
    st.header("Per-class analysis")
    runs = logic.runs_on(results, dataset)
    if not runs:
        st.info("no finished runs on this dataset yet")
        return
    ids = [r.run_id for r in runs]
    names = run_names(runs)  # readable names everywhere on the page; the id is in the leaderboard beside its name
    chosen = st.multiselect("runs", ids, default=logic.default_curve_runs(runs), format_func=names.get)
    label = st.selectbox("label", dataset.labels)
    chosen_runs = [r for r in runs if r.run_id in chosen]
    curves = {}
    for run in chosen_runs:
        try:
            curves[names[run.run_id]] = logic.curves(run)
        except BenchmarkError as exc:
            st.warning(str(exc))
    left, right = st.columns(2)
    left.plotly_chart(charts.roc_overlay(curves, label), width="stretch")
    right.plotly_chart(charts.pr_overlay(curves, label), width="stretch")
    st.plotly_chart(charts.auc_heatmap(logic.auc_matrix(runs).rename(columns=names)), width="stretch")
    st.subheader("Best model per label — and which others are not distinguishable from it")
    st.caption(
        "test ROC-AUC; seeds of one model pooled; a tie when the 95% paired bootstrap CI of the difference contains 0"
    )
    best, unsampled = cached_best_per_label(str(results), str(dataset.root), logic.results_signature(results))
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
        per_label = logic.label_results(run)
        if contamination := contamination_note(run):
            st.error(f"{run.run_id}: {contamination}")
        tuned = per_label.get(label, {}).get("threshold", 0.5)
        if per_label.get(label, {}).get("threshold_note"):
            st.warning(f"{label}: {per_label[label]['threshold_note']}")
        threshold = st.slider(f"threshold for {label} (tuned on valid: {tuned:.3f})", 0.0, 1.0, float(tuned), 0.01)
        st.dataframe(logic.threshold_effect(run, dataset, label, threshold))
        decisions = logic.test_decisions(run, dataset, label, threshold)
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


@st.cache_resource(show_spinner="reading the training images' features…")
def cached_novelty_check(dataset_path: str):
    """None when the lite0 features the linear probe caches are not there (never computed here, on a click)."""
    from benchmarks.models.novelty import NoveltyCheck

    try:
        return NoveltyCheck(logic.load_dataset_safely(Path(dataset_path))[0])
    except FileNotFoundError:
        return None


def novelty_hint(dataset: Dataset, image) -> None:
    """Out-of-distribution hint: how far the image is from the nearest training image, in frozen features."""
    check = cached_novelty_check(str(dataset.root))
    if check is None:
        st.caption(
            "no out-of-distribution hint: it reads the lite0 features the linear probe caches "
            f"(`python -m benchmarks baseline linear-probe {dataset.root}`)"
        )
        return
    novelty = check.check(image)
    (st.warning if novelty.unlike_training else st.caption)(novelty.message())


TRY_REPEATS = 5  # the latency shown is the median of this many calls on the uploaded image


def page_try(dataset: Dataset, results: Path) -> None:
    st.header("Try an image: every saved model side by side")
    every_run = logic.runs_on(results, dataset)
    runs = logic.predictable_runs(every_run)
    without = logic.runs_without_model(every_run)
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
            source = logic.dataset_image_with_bytes(
                dataset, cached_image_facts(str(dataset.root), modified), upload.getvalue()
            )
        elif picked != "(none)":
            image = open_rgb(dataset.root / picked)
            source = logic.dataset_image(dataset, picked)
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


def page_train(dataset: Dataset, results: Path) -> None:
    st.header("Train a model locally")
    with st.form("train"):
        a, b, c = st.columns(3)
        trainers = {family.kind: family for family in trainable_families()}
        framework = a.selectbox("framework", list(trainers), format_func=lambda kind: trainers[kind].title)
        backbone = b.selectbox("backbone", trainers[framework].backbones)
        preset = c.selectbox("preset", ["quick", "full", "(none)"])
        img_size = a.number_input("image size (0 = preset's)", 0, 640, 0, 16)
        epochs = b.number_input("epochs (-1 = preset's)", -1, 100, -1)
        freeze_epochs = c.number_input("freeze epochs (-1 = preset's)", -1, 20, -1)
        lr = a.text_input(
            "learning rate (empty = the preset's)",
            "",
            help="a number such as 4e-3; 'auto': the framework's default (fastai: fine_tune's 2e-3 from the probe's "
            "head, lr_find from a random one; Keras: 1e-3)",
        )
        seed = b.number_input("seed", 0, 10_000, 0)
        mixup = c.checkbox("MixUp")
        recipe = a.selectbox(
            "recipe",
            ["idiomatic", "matched"],
            help="idiomatic: the framework as its own documentation teaches; matched: the same head, optimizer, LR "
            "schedule and augmentations in fastai and Keras, so their difference measures the framework alone",
        )
        submitted = st.form_submit_button("start training")
    if submitted:
        options = {
            "preset": None if preset == "(none)" else preset,
            "backbone": backbone,
            "img_size": img_size or None,
            "epochs": None if epochs < 0 else epochs,
            "freeze_epochs": None if freeze_epochs < 0 else freeze_epochs,
            "lr": lr.strip() or None,
            "seed": seed,
            "mixup": mixup,
            "recipe": recipe,
        }
        command = logic.train_command(framework, dataset.root, results, options)
        st.session_state["job"] = logic.start_training(
            command, results / ".dashboard" / f"train-{int(time.time())}.log"
        )
    job = st.session_state.get("job")
    if job:
        show_job(job, dataset.root, results)


@st.fragment(run_every=2)
def show_job(job: dict, dataset_root: Path, results: Path) -> None:
    status = logic.training_status(job, results)
    planned = max(status["epochs_planned"], 1)
    eta = f" · about {status['eta_s'] / 60:.0f} min left" if status["eta_s"] else ""
    st.progress(
        min(status["epochs_done"] / planned, 1.0),
        text=f"{status['state']}: {status['epochs_done']:.1f}/{status['epochs_planned']} epochs{eta} · "
        f"{status['run'] or 'starting…'}",
    )
    if status["state"] == "running" and st.button("cancel training", help="Ctrl-C: the run is kept as interrupted"):
        logic.cancel_training(job)
    st.code("\n".join(status["tail"]) or "…", language=None)
    if Path(job["log"]).is_file():
        st.download_button(
            "full log (with framework messages)",
            Path(job["log"]).read_bytes(),
            file_name=Path(job["log"]).name,
            key=f"log-{job['pid']}",
        )
    if status["state"] == "cancelled":
        where = status["run"] or "no run folder yet"
        st.warning(f"cancelled; {where} is marked interrupted (continue it with the trainer's --resume {where})")
        return
    if status["state"] == "done" and status["run"]:
        if "measuring" not in job:  # then its latency, by the protocol every other run was timed with
            job["measuring"] = logic.start_training(
                logic.measure_command(dataset_root, results, status["run"]),
                Path(job["log"]).with_suffix(".latency.log"),
            )
        if job["measuring"]["process"].poll() is None:
            st.info(f"trained: {status['run']} — now timing its served model (one latency protocol, ~15 s)…")
        else:
            st.success(f"finished: {status['run']} is on the leaderboard, with its latency")
    elif status["state"] == "failed":
        st.error(status["error"])


def page_report(dataset: Dataset, results: Path) -> None:
    st.header("Report")
    st.write(
        "One self-contained HTML file (EDA, leaderboard, per-class ROC/AUC, paired comparisons) for a written report; "
        f"the same as `python -m benchmarks report {dataset.root}`."
    )
    if st.button("build the report"):
        from benchmarks.evaluation.report import build_report
        from benchmarks.models.ease import ease_html

        with st.spinner("building…"):
            ease = ease_table_cached(str(results), str(dataset.root), logic.results_signature(results))
            st.session_state["report_html"] = build_report(dataset, results, [ease_html(ease)])
    if "report_html" in st.session_state:
        st.download_button(
            "download report.html",
            st.session_state["report_html"],
            file_name=f"report-{dataset.name.lower()}.html",
            mime="text/html",
        )


@st.cache_data(show_spinner="counting code, options and install sizes…", max_entries=4)
def ease_table_cached(results: str, dataset_path: str, signature: tuple):
    from benchmarks.models.ease import ease_table

    dataset, _ = logic.load_dataset_safely(Path(dataset_path))
    return ease_table(Path(results), dataset)


def page_frameworks(dataset: Dataset, results: Path) -> None:
    st.header("Frameworks: ease of use, measured")
    st.caption(
        "Numbers come from commands: code and options counted from the source, install size from the installed "
        "packages, times, memory, size and latency from the runs on this dataset; import times from "
        "`python -m benchmarks ease --measure`. The text rows are each family's declared facts; opinions say so."
    )
    from benchmarks.models.ease import NUMERIC_ROWS

    table = ease_table_cached(str(results), str(dataset.root), logic.results_signature(results))
    st.dataframe(table.loc[NUMERIC_ROWS], width="stretch")
    for column in table.columns:
        with st.expander(column):
            for label in table.index:
                if label not in NUMERIC_ROWS and table.loc[label, column] != "—":
                    st.markdown(f"**{label}**: {table.loc[label, column]}")
            for pitfall in logic.ease_pitfalls(column):
                st.markdown(f"- {pitfall['what']} → {pitfall['workaround']} ([link]({pitfall['link']}))")


def render_safely(render, dataset: Dataset, results: Path) -> None:
    """A damaged file shows as one message in the page; the traceback of anything unforeseen goes to the server log.
    Work that would fan out to processes (joblib's bootstrap) uses threads here: no worker process may outlive the
    server or hold it at shutdown."""
    try:
        with parallel_config(backend="threading"):
            render(dataset, results)
    except BenchmarkError as exc:
        st.error(str(exc))
    except Exception as exc:  # Streamlit's own rerun/stop signals are BaseExceptions and pass through
        logging.getLogger("imgbench.dashboard").exception("page failed")
        st.error(f"this page could not be shown: {exc.__class__.__name__}: {exc} (details in the server log)")


PAGES = {
    "Dataset": page_dataset,
    "Leaderboard": page_leaderboard,
    "Per-class analysis": page_per_class,
    "Try an image": page_try,
    "Frameworks": page_frameworks,
    "Report": page_report,
}
if os.environ.get("DASHBOARD_READONLY") != "1":
    PAGES["Train"] = page_train


def main() -> None:
    st.set_page_config(page_title="imgbench", layout="wide")
    dataset, results = sidebar()
    if dataset is None:
        st.title("imgbench")
        st.write("Choose a dataset in the sidebar (build the default one with `make demo`).")
        return

    def runner(render):
        return lambda: render_safely(render, dataset, results)

    first = st.session_state.get("page", "Dataset")  # the page shown when the URL names none
    pages = [
        st.Page(runner(render), title=title, url_path=title.lower().replace(" ", "-"), default=title == first)
        for title, render in PAGES.items()
    ]
    st.navigation(pages).run()


main()
