"""AutoML Edge exports, Vertex batch predictions, and every evaluated export served exactly as it was scored."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.data.dataset import load_dataset
from benchmarks.data.images import open_rgb
from benchmarks.errors import BenchmarkError
from cloud_baselines.cli import main as cloud_main
from cloud_baselines.teachable_machine import evaluate_tm_export, open_tm_export
from cloud_baselines.vertex_automl import (
    evaluate_edge_export,
    export_import_files,
    ingest_batch_predictions,
    open_edge_export,
)
from tests.cloud_helpers import (
    FLOWERS,
    FRUIT,
    FRUIT_IMAGES,
    MADE_HERE,
    PHOTOS,
    dataset_from_files,
)


def test_automl_edge_export_gets_its_sample_photos_right():
    classifier, classes, _ = open_edge_export(FLOWERS)
    assert classifier.describe()["input_dtype"] == "uint8"
    for photo in sorted((FLOWERS / "ios_resources").glob("*.jp*g")):
        scores = classifier.predict(open_rgb(photo))
        assert classes[scores.argmax()].rstrip("s") == photo.stem.rstrip("s")  # sunflower.jpg is class 'sunflowers'


def test_vertex_eval_and_ingest_make_runs(tmp_path):
    photos = sorted((FLOWERS / "ios_resources").glob("*.jp*g"))
    labels = ["daisy", "dandelion", "roses", "sunflowers", "tulips"]
    name_of = {"sunflower": "sunflowers"}
    root = dataset_from_files(tmp_path / "flowers", photos, lambda p: [name_of.get(p.stem, p.stem)], labels)
    dataset = load_dataset(root)
    run = evaluate_edge_export(FLOWERS, dataset, tmp_path / "results")
    assert json.loads((run.path / "run.json").read_text())["model"]["input_quantization"]["zero_point"] == 128

    files = export_import_files(dataset, tmp_path / "vertex", "gs://bucket/flowers")
    first = json.loads(files["jsonl"].read_text().splitlines()[0])
    assert first["imageGcsUri"].startswith("gs://bucket/flowers/images/")
    assert files["csv"].read_text().splitlines()[0].split(",")[0] in ("training", "validation", "test")

    rows = dataset.rows(["valid", "test"])
    with open(tmp_path / "predictions_00001.jsonl", "w") as out:
        for rel, true in zip(rows["image"], rows["labels"]):
            out.write(
                json.dumps(
                    {
                        "instance": {"content": f"gs://bucket/flowers/{rel}", "mimeType": "image/jpeg"},
                        "prediction": {
                            "ids": ["1", "2"],
                            "displayNames": [true[0], "background"],
                            "confidences": [0.9, 0.05],
                        },
                    }
                )
                + "\n"
            )
    run = ingest_batch_predictions(tmp_path / "predictions_00001.jsonl", dataset, tmp_path / "results")
    metrics = json.loads((run.path / "metrics.json").read_text())
    assert metrics["overall"]["macro_roc_auc"] > 0.9
    (tmp_path / "partial.jsonl").write_text((tmp_path / "predictions_00001.jsonl").read_text().splitlines()[0] + "\n")
    with pytest.raises(BenchmarkError, match="no prediction for 4 of 5"):
        ingest_batch_predictions(tmp_path / "partial.jsonl", dataset, tmp_path / "results")


@pytest.fixture
def fruit_and_flowers(tmp_path) -> Path:
    """One dataset with the fruit samples and the flower photos: both real exports score it (each its own labels)."""
    fruit = ["fresh_apple", "fresh_banana", "fresh_orange", "rotten_apple", "rotten_orange", "rotten_banana"]
    flowers = ["daisy", "dandelion", "roses", "sunflowers", "tulips"]
    photos = sorted((FLOWERS / "ios_resources").glob("*.jp*g"))

    def labels_of(path: Path) -> list[str]:
        return (
            [{"sunflower": "sunflowers"}.get(path.stem, path.stem)]
            if path in photos
            else ["_".join(path.stem.split("_")[:2])]
        )

    return dataset_from_files(tmp_path / "mixed", FRUIT_IMAGES + photos, labels_of, fruit + flowers)


def test_evaluated_exports_predict_new_images_as_they_scored_the_test_split(fruit_and_flowers, tmp_path):
    from benchmarks.evaluation.results import load_run
    from benchmarks.serving.predictors import can_predict, load_predictor

    dataset = load_dataset(fruit_and_flowers)
    runs = [
        evaluate_tm_export(FRUIT / "converted_tflite", dataset, tmp_path / "results"),
        evaluate_edge_export(FLOWERS, dataset, tmp_path / "results"),
    ]
    written = pd.read_csv(runs[0].path / "predictions.csv").set_index("image")
    for run in runs:
        run = load_run(run.path)
        assert can_predict(run)
        predictor = load_predictor(run)
        table = pd.read_csv(run.path / "predictions.csv").set_index("image")
        for rel in table.index[:4]:
            scores = predictor.predict([open_rgb(dataset.root / rel)])[0]
            np.testing.assert_allclose(scores, table.loc[rel, dataset.labels].to_numpy(float), atol=2e-5)
    assert written.loc[:, ["daisy", "tulips"]].to_numpy().max() == 0  # the fruit model scores no flower label


def test_batch_prediction_runs_and_moved_exports_cannot_predict(tmp_path):
    from benchmarks.errors import RunError
    from benchmarks.evaluation.results import load_run
    from benchmarks.serving.predictors import can_predict, load_predictor

    labels = ["fresh_apple", "fresh_banana", "fresh_orange", "rotten_apple", "rotten_orange", "rotten_banana"]
    root = dataset_from_files(tmp_path / "fruit", FRUIT_IMAGES, lambda p: ["_".join(p.stem.split("_")[:2])], labels)
    dataset = load_dataset(root)
    rows = dataset.rows(["valid", "test"])
    with open(tmp_path / "predictions_00001.jsonl", "w") as out:
        for rel, true in zip(rows["image"], rows["labels"]):
            out.write(
                json.dumps(
                    {
                        "instance": {"content": f"gs://b/{rel}"},
                        "prediction": {"displayNames": [true[0]], "confidences": [0.9]},
                    }
                )
                + "\n"
            )
    batch = ingest_batch_predictions(tmp_path / "predictions_00001.jsonl", dataset, tmp_path / "results")
    assert not can_predict(load_run(batch.path))

    export = tmp_path / "export"
    shutil.copytree(FRUIT / "converted_tflite", export)
    run = evaluate_tm_export(export, dataset, tmp_path / "results")
    shutil.rmtree(export)
    with pytest.raises(RunError, match="no longer there"):
        load_predictor(run.path)


def test_try_an_image_page_shows_the_evaluated_exports_side_by_side(fruit_and_flowers, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from dashboard.logic import datasets, leaderboard

    dataset = load_dataset(fruit_and_flowers)
    evaluate_tm_export(FRUIT / "converted_tflite", dataset, tmp_path / "results")
    evaluate_edge_export(FLOWERS, dataset, tmp_path / "results")
    monkeypatch.setattr(datasets, "DEFAULT_DATA_ROOT", fruit_and_flowers.parent)
    monkeypatch.setattr(leaderboard, "DEFAULT_RESULTS", tmp_path / "results")
    app = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "streamlit_app.py"), default_timeout=120)
    app.session_state["page"] = "Try an image"
    app.run()
    app.selectbox(key="test_image").select_index(1).run()
    assert not app.exception and not app.error, (app.exception, [e.value for e in app.error])
    shown = [m.value for m in app.markdown]
    assert sum("predicted:" in m for m in shown) == 2
    assert any(m.startswith("**teachable_machine**") for m in shown) and any(
        m.startswith("**vertex_automl**") for m in shown
    )


@pytest.mark.parametrize(
    "export, opener, tolerance",
    [
        ("tm_tiny_gray2", open_tm_export, 1e-5),
        ("automl_tfjs_waste4", open_edge_export, 1e-4),
        ("automl_container_waste4", open_edge_export, 1e-5),
    ],
)
def test_every_export_format_scores_what_its_source_model_scored(export, opener, tolerance):
    """TM's tiny grayscale TF.js model, AutoML Edge's TF.js graph model and its Container SavedModel reproduce the
    scores their source network gave the photos before conversion (expected.json, written by build_exports.py)."""
    expected = json.loads((MADE_HERE / export / "expected.json").read_text())
    classifier, classes, _ = opener(MADE_HERE / export)
    assert sorted(classes) == sorted(expected["classes"])
    got = classifier.predict_batch([open_rgb(p) for p in PHOTOS])
    want = [[expected["scores"][p.name][expected["classes"].index(c)] for c in classes] for p in PHOTOS]
    np.testing.assert_allclose(got, want, atol=tolerance)
    assert got.std(axis=0).max() > 1e-3  # the photos score differently: a reader feeding wrong pixels would show


def test_tiny_model_reads_its_input_from_the_export():
    classifier, classes, _ = open_tm_export(MADE_HERE / "tm_tiny_gray2")
    assert (classifier.size, classifier.channels) == (96, 1) and classes == ["Class 1", "Class 2"]
    assert classifier.describe()["format"] == "tfjs-tiny-grayscale"


@pytest.mark.parametrize(
    "command, export, mapping",
    [
        ("tm-eval", "tm_tiny_gray2", {"Class 1": "flower", "Class 2": None}),
        ("vertex-eval", "automl_tfjs_waste4", {"cardboard": "flower"}),
        ("vertex-eval", "automl_container_waste4", {"cardboard": "flower"}),
    ],
)
def test_eval_commands_print_a_summary_for_single_class_data(tmp_path, capsys, command, export, mapping):
    """Every valid/test image carries the one label: AUC is undefined, and the run is still made and summarised."""
    root = dataset_from_files(tmp_path / "one", PHOTOS, lambda p: ["flower"], ["flower"])
    (tmp_path / "mapping.json").write_text(json.dumps(mapping))
    argv = [command, str(MADE_HERE / export), str(root), "--results", str(tmp_path / "r")]
    assert cloud_main([*argv, "--mapping", str(tmp_path / "mapping.json")]) == 0
    out = capsys.readouterr().out
    assert "test macro AUC n/a, mAP" in out
    (run,) = (tmp_path / "r").iterdir()
    assert json.loads((run / "run.json").read_text())["status"] == "done"

    from benchmarks.serving.predictors import load_predictor  # the served model is the scored one

    table = pd.read_csv(run / "predictions.csv").set_index("image")
    served = load_predictor(run).predict([open_rgb(root / rel) for rel in table.index[:3]])
    np.testing.assert_allclose(served[:, 0], table["flower"].to_numpy(float)[:3], atol=1e-5)


def test_tfjs_fused_depthwise_op_is_split_back_into_tensorflow_ops(tmp_path):
    """TF.js's converter fuses depthwise conv + bias + Relu6 into its own op; TensorFlow runs the split form."""
    import tensorflow as tf
    from google.protobuf import json_format

    from benchmarks.exports.image_prep import automl_tfjs_fit, to_minus_one_one
    from cloud_baselines.tfjs_graph import GraphModelClassifier

    rng = np.random.default_rng(0)
    kernel, bias = rng.normal(size=(3, 3, 3, 1)).astype("f4"), rng.normal(size=3).astype("f4")
    graph = tf.Graph()
    with graph.as_default():
        image = tf.compat.v1.placeholder(tf.float32, [1, 8, 8, 3], name="image")
        w, b = tf.constant(kernel, name="w"), tf.constant(bias, name="b")
        y = tf.nn.relu6(tf.nn.bias_add(tf.nn.depthwise_conv2d(image, w, [1, 1, 1, 1], "SAME"), b), name="act")
        tf.nn.softmax(tf.reduce_mean(y, axis=[1, 2]), name="scores")
    nodes = json_format.MessageToDict(graph.as_graph_def())["node"]
    depthwise = next(n for n in nodes if n["op"] == "DepthwiseConv2dNative")
    fused = {
        "name": "act",
        "op": "FusedDepthwiseConv2dNative",
        "input": [*depthwise["input"], "b"],
        "attr": {
            **depthwise["attr"],
            "fused_ops": {"list": {"s": ["Qmlhc0FkZA==", "UmVsdTY="]}},
            "num_args": {"i": "1"},
        },
    }  # fused_ops ["BiasAdd", "Relu6"], base64 as protobuf JSON writes bytes
    kept = [n for n in nodes if n["op"] not in ("DepthwiseConv2dNative", "BiasAdd", "Relu6")] + [fused]
    for node in kept:
        if node["name"] in ("w", "b"):
            node["attr"]["value"]["tensor"].pop("tensorContent", None)
    (tmp_path / "model.json").write_text(
        json.dumps(
            {
                "format": "graph-model",
                "modelTopology": {"node": kept},
                "weightsManifest": [
                    {
                        "paths": ["w.bin"],
                        "weights": [
                            {"name": "w", "shape": [3, 3, 3, 1], "dtype": "float32"},
                            {"name": "b", "shape": [3], "dtype": "float32"},
                        ],
                    }
                ],
            }
        )
    )
    (tmp_path / "w.bin").write_bytes(kernel.tobytes() + bias.tobytes())
    photo = open_rgb(PHOTOS[0])
    x = to_minus_one_one(automl_tfjs_fit(photo, 8))[None]
    with tf.compat.v1.Session(graph=graph) as session:
        want = session.run("scores:0", {"image:0": x})
    np.testing.assert_allclose(GraphModelClassifier(tmp_path / "model.json").predict(photo), want[0], atol=1e-6)
