"""Dashboard: page logic on the session's tiny runs, and every page rendered by Streamlit's AppTest."""
import json
from pathlib import Path

import pytest

from benchmarks.dataset import load_dataset
from benchmarks import charts
from dashboard import logic

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")


def test_gallery_filters(tiny_scenes):
    dataset = load_dataset(tiny_scenes)
    label = dataset.labels[0]
    rows = logic.gallery(dataset, label=label, split="train")
    assert len(rows) and all(label in labels for labels in rows["labels"]) and set(rows["split"]) == {"train"}


def test_threshold_effect_at_the_tuned_threshold_is_what_the_evaluator_wrote(fastai_run, tiny_scenes):
    dataset = load_dataset(tiny_scenes)
    metrics = json.loads((fastai_run.path / "metrics.json").read_text())
    for label in dataset.labels[:3]:
        effect = logic.threshold_effect(fastai_run, dataset, label, metrics["thresholds"][label])
        written = metrics["per_label"][label]
        assert effect.loc["test", "f1"] == pytest.approx(written["f1"]) and effect.loc["test", "tp"] == written["tp"]


def test_auc_matrix_and_charts(fastai_run, keras_run, tiny_scenes, tiny_results):
    dataset = load_dataset(tiny_scenes)
    runs = logic.runs_on(tiny_results, dataset)
    matrix = logic.auc_matrix(runs)
    assert set(matrix.columns) == {fastai_run.run_id, keras_run.run_id} and list(matrix.index) == dataset.labels
    table = logic.leaderboard_table(tiny_results, dataset)
    assert len(charts.leaderboard_bars(table).data) == 1 and charts.auc_heatmap(matrix).data
    errors = logic.worst_errors(keras_run, dataset, dataset.labels[0], k=3)
    assert len(errors["false_positives"]) <= 3


@pytest.fixture
def app_env(monkeypatch, tiny_scenes, tiny_results, fastai_run, keras_run):
    monkeypatch.setattr(logic, "DEFAULT_DATA_ROOT", tiny_scenes.parent)
    monkeypatch.setattr(logic, "DEFAULT_RESULTS", tiny_results)


@pytest.mark.parametrize("page", ["Dataset", "Leaderboard", "Per-class analysis", "Try an image", "Train", "Report"])
def test_every_page_renders_without_exceptions(app_env, page):
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(APP, default_timeout=120)
    app.session_state["page"] = page
    app.run()
    assert not app.exception, app.exception
    if page == "Try an image":
        app.selectbox(key="test_image").select_index(1).run()
        assert not app.exception, app.exception
        assert any("predicted:" in m.value for m in app.markdown)


def test_empty_results_folder_is_a_friendly_message(app_env, monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setattr(logic, "DEFAULT_RESULTS", tmp_path / "nothing-here")
    app = AppTest.from_file(APP, default_timeout=60)
    app.session_state["page"] = "Leaderboard"
    app.run()
    assert not app.exception and any("no runs on this dataset" in i.value for i in app.info)


def test_train_command_and_a_failed_job_shows_its_error(tmp_path):
    command = logic.train_command("keras", tmp_path / "missing", tmp_path / "results", {"preset": "quick", "epochs": 3, "mixup": True, "tta": False, "lr": ""})
    assert command[1:3] == ["-m", "keras_model.train"] and command[-5:] == ["--preset", "quick", "--epochs", "3", "--mixup"]
    job = logic.start_training(command, tmp_path / "results" / "job.log")
    job["process"].wait(timeout=120)
    status = logic.training_status(job, tmp_path / "results")
    assert status["state"] == "failed" and "dataset folder not found" in status["error"]


def test_report_is_one_self_contained_html_file(fastai_run, keras_run, tiny_scenes, tiny_results, tmp_path):
    from benchmarks.cli import main

    out = tmp_path / "report.html"
    assert main(["report", str(tiny_scenes), "--results", str(tiny_results), "--out", str(out)]) == 0
    text = out.read_text()
    assert "Leaderboard" in text and "Paired comparisons with the best run" in text and fastai_run.run_id in text
    assert text.count("plotly-graph-div") >= 3 + len(load_dataset(tiny_scenes).labels) and 'src="https://cdn.plot.ly' not in text
