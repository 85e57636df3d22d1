"""Dashboard: page logic on the session's tiny runs, and every page rendered by Streamlit's AppTest."""

import json
from pathlib import Path

import pytest

from benchmarks.data.dataset import load_dataset
from benchmarks.evaluation import charts
from benchmarks.evaluation.results import load_run
from dashboard.logic import datasets, jobs, leaderboard, per_class

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")


def test_an_upload_of_a_dataset_image_is_recognised_by_its_bytes(tiny_scenes):
    from benchmarks.data.eda import scan_images

    dataset = load_dataset(tiny_scenes)
    facts = scan_images(dataset)
    rel = dataset.rows("valid")["image"].iloc[0]
    found = datasets.dataset_image_with_bytes(dataset, facts, (dataset.root / rel).read_bytes())
    assert found == (rel, "valid", list(dataset.rows("valid")["labels"].iloc[0]))
    assert datasets.dataset_image_with_bytes(dataset, facts, b"other bytes") is None


def test_gallery_filters(tiny_scenes):
    dataset = load_dataset(tiny_scenes)
    label = dataset.labels[0]
    rows = datasets.gallery(dataset, label=label, split="train")
    assert len(rows) and all(label in labels for labels in rows["labels"]) and set(rows["split"]) == {"train"}


def test_threshold_effect_at_the_tuned_threshold_is_what_the_evaluator_wrote(fastai_run, tiny_scenes):
    dataset = load_dataset(tiny_scenes)
    metrics = json.loads((fastai_run.path / "metrics.json").read_text())
    for label in dataset.labels[:3]:
        effect = per_class.threshold_effect(fastai_run, dataset, label, metrics["thresholds"][label])
        written = metrics["per_label"][label]
        assert effect.loc["test", "f1"] == pytest.approx(written["f1"]) and effect.loc["test", "tp"] == written["tp"]


def test_auc_matrix_and_charts(fastai_run, keras_run, replica_run, tiny_scenes, tiny_results):
    dataset = load_dataset(tiny_scenes)
    runs = leaderboard.runs_on(tiny_results, dataset)
    matrix = per_class.auc_matrix(runs)
    assert (
        set(matrix.columns) == {fastai_run.run_id, keras_run.run_id, replica_run.run_id}
        and list(matrix.index) == dataset.labels
    )
    table = leaderboard.leaderboard_table(tiny_results, dataset)
    assert len(charts.leaderboard_bars(table).data) == 1 and charts.auc_heatmap(matrix).data
    label = dataset.labels[0]
    tuned = per_class.label_results(keras_run)[label]["threshold"]
    at_tuned = per_class.test_decisions(keras_run, dataset, label, tuned)
    for field in ("tp", "fp", "fn", "tn"):  # at the tuned threshold: exactly the evaluator's counts
        assert at_tuned["counts"][label][field] == per_class.label_results(keras_run)[label][field]
    errors = at_tuned["errors"]
    assert (errors["error"] == "FP").sum() == at_tuned["counts"][label]["fp"]
    assert (errors["error"] == "FN").sum() == at_tuned["counts"][label]["fn"]
    reliability = {run.run_id: per_class.reliability(run) for run in (fastai_run, replica_run)}
    diagram = charts.reliability_overlay(reliability, label)
    assert len(diagram.data) == 3 and "ECE" in diagram.data[0].name  # two runs and the diagonal
    assert sum(reliability[fastai_run.run_id]["curves"][label]["count"]) == len(dataset.rows("test"))
    assert at_tuned["mixed"][0, 0] == at_tuned["counts"][label]["fn"]  # the diagonal: the label's misses
    everything = per_class.test_decisions(keras_run, dataset, label, 0.0)  # the slider at 0: every image says yes
    assert everything["counts"][label]["fn"] == 0 and everything["counts"][label]["tn"] == 0
    assert (
        set(everything["errors"]["error"]) <= {"FP"}
        and charts.label_confusion_heatmap(everything["mixed"], dataset.labels, "t").data
    )
    per_label = per_class.label_results(keras_run)
    grids = charts.confusion_grids(per_label, "confusion")
    first = per_label[dataset.labels[0]]
    assert len(grids.data) == len(dataset.labels) and list(map(list, grids.data[0].text)) == [
        [first["tn"], first["fp"]],
        [first["fn"], first["tp"]],
    ]


@pytest.fixture
def app_env(monkeypatch, tiny_scenes, tiny_results, fastai_run, keras_run, replica_run):
    monkeypatch.setattr(datasets, "DEFAULT_DATA_ROOT", tiny_scenes.parent)
    monkeypatch.setattr(leaderboard, "DEFAULT_RESULTS", tiny_results)
    return tiny_scenes


@pytest.mark.parametrize(
    "page",
    [
        "Dataset",
        "Leaderboard",
        "Per-class analysis",
        "Try an image",
        "Frameworks",
        "Tuning",
        "Robustness",
        "Images needed",
        "Train",
        "Report",
    ],
)
def test_every_page_renders_without_exceptions(app_env, page):
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(APP, default_timeout=120)
    app.session_state["page"] = page
    app.run()
    assert not app.exception and not app.error, (app.exception, [e.value for e in app.error])
    if page == "Try an image":
        app.selectbox(key="test_image").select_index(1).run()
        assert not app.exception, app.exception
        assert sum("predicted:" in m.value for m in app.markdown) == 3  # fastai, Keras, TM replica
        assert sum("missed:" in c.value for c in app.caption) == 3  # the true labels are known for a test image
    if page == "Train":  # the tiny dataset is small data: the preset chosen for its size comes first
        assert next(s for s in app.selectbox if s.label == "preset").value == "small"


def test_empty_results_folder_is_a_friendly_message(app_env, monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setattr(leaderboard, "DEFAULT_RESULTS", tmp_path / "nothing-here")
    app = AppTest.from_file(APP, default_timeout=60)
    app.session_state["page"] = "Leaderboard"
    app.run()
    assert not app.exception and any("no runs on this dataset" in i.value for i in app.info)


def test_damaged_run_files_are_messages_in_the_page(
    app_env, monkeypatch, tmp_path, tiny_results, fastai_run, keras_run, replica_run
):
    import shutil

    from streamlit.testing.v1 import AppTest

    results = tmp_path / "results"
    shutil.copytree(tiny_results, results)
    (results / fastai_run.run_id / "metrics.json").write_text('{"overall": ')  # truncated
    (results / keras_run.run_id / "predictions.csv").write_text("image,split,nothing\nx,test,2\n")
    (results / replica_run.run_id / "head.keras").write_bytes(b"PK not really a zip")
    monkeypatch.setattr(leaderboard, "DEFAULT_RESULTS", results)

    def page(name: str) -> AppTest:
        app = AppTest.from_file(APP, default_timeout=120)
        app.session_state["page"] = name
        app.run()
        assert not app.exception, app.exception
        return app

    per_class = page("Per-class analysis")
    assert any("metrics.json: damaged" in w.value for w in per_class.warning)
    ids = [r.run_id for r in leaderboard.runs_on(results, load_dataset(app_env))]
    next(s for s in per_class.selectbox if s.label == "run").select_index(ids.index(keras_run.run_id)).run()
    assert not per_class.exception and any("predictions.csv" in e.value for e in per_class.error)

    try_page = page("Try an image")
    try_page.selectbox(key="test_image").select_index(1).run()
    assert not try_page.exception
    assert sum("predicted:" in m.value for m in try_page.markdown) == 2  # fastai and Keras models are intact
    assert any("head.keras" in e.value and "damaged" in e.value for e in try_page.error)

    board = page("Leaderboard")  # metrics.json is derived data: computed in memory from predictions.csv ...
    assert not board.exception and fastai_run.run_id in board.dataframe[0].value["run"].tolist()
    assert board.dataframe[0].value.set_index("run").loc[fastai_run.run_id, "macro_auc"] > 0
    assert (results / fastai_run.run_id / "metrics.json").read_text() == '{"overall": '  # ... and never written


def test_train_command_and_a_failed_job_shows_its_error(tmp_path):
    command = jobs.train_command(
        "keras",
        tmp_path / "missing",
        tmp_path / "results",
        {"preset": "quick", "epochs": 3, "mixup": True, "tta": False, "lr": ""},
    )
    assert command[1:3] == ["-m", "keras_model.train"] and command[-5:] == [
        "--preset",
        "quick",
        "--epochs",
        "3",
        "--mixup",
    ]
    measure = jobs.measure_command(tmp_path / "data", tmp_path / "results", "results/run1")
    assert measure[1:4] == ["-m", "benchmarks", "measure"] and measure[-2:] == ["--runs", "results/run1"]
    job = jobs.start_training(command, tmp_path / "results" / "job.log")
    job["process"].wait(timeout=120)
    status = jobs.training_status(job, tmp_path / "results")
    assert status["state"] == "failed" and "dataset folder not found" in status["error"]


def test_report_is_one_self_contained_html_file(
    fastai_run, keras_run, replica_run, tiny_scenes, tiny_results, tmp_path
):
    from benchmarks.cli import main

    out = tmp_path / "report.html"
    assert main(["report", str(tiny_scenes), "--results", str(tiny_results), "--out", str(out)]) == 0
    text = out.read_text()
    assert "Leaderboard" in text and "Paired comparisons with the best run" in text and fastai_run.run_id in text
    assert (
        text.count("plotly-graph-div") >= 3 + len(load_dataset(tiny_scenes).labels)
        and 'src="https://cdn.plot.ly' not in text
    )


def test_train_page_log_is_readable_eta_follows_batches_and_cancel_stops_the_trainer(tmp_path, fastai_run, keras_run):
    import sys
    import time

    noisy = "oneDNN custom operations are on. To turn them off, set TF_ENABLE_ONEDNN_OPTS=0\nrun: x\r\nepoch 1\n\n"
    assert jobs.readable_log_lines(noisy) == ["run: x", "epoch 1"]

    info = {
        "params": {"epochs": 3, "freeze_epochs": 1},
        "history": [{"phase": "frozen", "epoch": 0, "seconds": 60.0}],
        "within_epoch": {"phase": "unfrozen", "epoch": 0, "batch": 5, "batches": 10},
    }
    done, planned = jobs.epoch_position(info)
    assert (done, planned) == (1.5, 4) and jobs.eta_seconds(info, done, planned, 120.0) == 150.0
    first = {
        "params": {"epochs": 2},
        "history": [],
        "within_epoch": {"phase": "x", "epoch": 0, "batch": 1, "batches": 4},
    }
    assert jobs.eta_seconds(first, *jobs.epoch_position(first), elapsed=30.0) == 210.0  # 1/4 epoch in 30 s

    for run in (fastai_run, keras_run):  # both trainers note where they are inside an epoch
        within = load_run(run.path).info["within_epoch"]
        assert within["batches"] > 0 and within["batch"] == within["batches"]

    log = tmp_path / "train.log"
    command = [sys.executable, "-c", "import time; print('run: nowhere', flush=True); time.sleep(60)"]
    job = jobs.start_training(command, log)
    time.sleep(1)
    jobs.cancel_training(job)  # SIGINT; where the child ignores it (CI's background shells), SIGTERM follows
    deadline = time.time() + 30
    while (status := jobs.training_status(job, tmp_path))["state"] == "cancelling" and time.time() < deadline:
        time.sleep(0.5)
    assert status["state"] == "cancelled" and status["error"] is None and status["eta_s"] is None
