"""``python -m tools.export``: trained runs in ONNX / SavedModel / TFLite, parity with the served model, the
TFLite round trip through our own AutoML Edge reader, and one-line refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks.evaluation.evaluate import metrics_of
from benchmarks.exports.exchange import ExportedModel
from tests.conftest import refused
from tools import export
from tools.export import export_run


def _check_folder(folder, run, fmt):
    record = json.loads((folder / "export.json").read_text())
    assert record["format"] == fmt and record["run_id"] == run.run_id
    assert record["parity"]["max_abs_diff"] <= 1e-4 and record["parity"]["images"] == 8  # the tiny test split
    lines = (folder / "labels.txt").read_text().splitlines()
    assert lines == [f"{i} {label}" for i, label in enumerate(run.labels)]  # Teachable Machine's labels.txt
    thresholds = json.loads((folder / "thresholds.json").read_text())["thresholds"]
    assert thresholds == pytest.approx(metrics_of(run)["thresholds"])
    assert record["input"]["shape"][1:] == [64, 64, 3] and record["output"]["shape"] == [None, len(run.labels)]
    return record


@pytest.mark.training
def test_fastai_run_exports_to_onnx_that_onnx_runtime_scores_like_the_served_model(fastai_run, tmp_path):
    record = export_run(fastai_run.path, "onnx", tmp_path / "onnx")
    _check_folder(tmp_path / "onnx", fastai_run, "onnx")
    assert "torch.onnx" in record["converter"] and record["size_bytes"] > 1_000_000
    scores = ExportedModel("onnx", tmp_path / "onnx" / "model.onnx").scores(np.zeros((3, 64, 64, 3), np.float32))
    assert scores.shape == (3, len(fastai_run.labels)) and ((scores > 0) & (scores < 1)).all()  # sigmoid inside


@pytest.mark.training
def test_keras_run_exports_to_tflite_and_reads_back_through_vertex_eval(keras_run, tmp_path):
    record = export_run(keras_run.path, "tflite", tmp_path / "tflite", round_trip=True)
    _check_folder(tmp_path / "tflite", keras_run, "tflite")
    assert (tmp_path / "tflite" / "dict.txt").is_file()  # AutoML Edge's layout
    trip = record["round_trip"]
    assert trip["max_abs_diff_vs_run_predictions"] <= 1e-4
    assert trip["test_macro_auc_read_back"] == pytest.approx(trip["test_macro_auc_run"], abs=1e-6)


@pytest.mark.training
def test_a_tm_replica_exports_as_teachable_machine_would_and_reads_back(replica_run, tmp_path):
    record = export_run(replica_run.path, "tflite", tmp_path / "tflite", round_trip=True)
    assert record["parity"]["max_abs_diff"] <= 1e-4 and "LANCZOS" in record["input"]["resize"]
    assert record["round_trip"]["max_abs_diff_vs_run_predictions"] <= 1e-4


@pytest.mark.training
@pytest.mark.parametrize("fmt", ["savedmodel", "onnx"])
def test_keras_run_exports_to_savedmodel_and_onnx(keras_run, tmp_path, fmt):
    record = export_run(keras_run.path, fmt, tmp_path / fmt)
    _check_folder(tmp_path / fmt, keras_run, fmt)
    assert record["converter"].startswith("keras")


@pytest.mark.training
def test_an_export_that_misses_parity_writes_nothing_and_keeps_the_old_one(fastai_run, tmp_path, monkeypatch):
    out = tmp_path / "onnx"
    export_run(fastai_run.path, "onnx", out)
    before = (out / "model.onnx").read_bytes()
    real = ExportedModel.scores
    monkeypatch.setattr(ExportedModel, "scores", lambda self, x: real(self, x) + 1e-3)
    with pytest.raises(Exception, match="differs from the served model by up to 1.0"):
        export_run(fastai_run.path, "onnx", out)
    assert (out / "model.onnx").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["onnx"]  # no staging folder left behind


def test_unreachable_formats_and_runs_without_a_model_are_refused_in_one_line(tiny_scenes, tmp_path, capsys):
    from benchmarks.data.dataset import load_dataset
    from benchmarks.models.baselines import run_prior

    prior = run_prior(load_dataset(tiny_scenes), tmp_path)
    refused(capsys, [str(prior.path), "--format", "onnx"], "nothing to export", main=export.main)


@pytest.mark.training
def test_format_limits_are_said_plainly(fastai_run, keras_run, capsys):
    refused(capsys, [str(fastai_run.path), "--format", "tflite"], "no maintained PyTorch-to-TensorFlow", export.main)
    refused(capsys, [str(keras_run.path), "--format", "tfjs"], "tensorflowjs 4.22", export.main)
    argv = [str(fastai_run.path), "--format", "onnx", "--round-trip"]
    refused(capsys, argv, "--round-trip reads tflite", export.main)


@pytest.mark.training
def test_the_export_report_lists_exports_beside_the_reference_sizes(fastai_run, capsys):
    from tools import export_report

    export_run(fastai_run.path, "onnx")  # default place: RUN/exports/onnx
    assert export_report.main([str(fastai_run.path.parent)]) == 0
    page = capsys.readouterr().out
    assert f"| {fastai_run.run_id} | onnx |" in page and "AutoML Vision Edge TFLite" in page
