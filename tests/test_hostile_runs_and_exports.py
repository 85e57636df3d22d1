"""Hostile and broken runs and exports, made at test time: damaged predictions, run records, metrics, TM and AutoML
exports and service outputs are each refused with one line (exit 2), never a traceback, never a page or table down."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.cli import main as benchmarks_main
from tests.conftest import refused


def _prior_run(tmp_path, dataset_root) -> Path:
    from benchmarks.data.dataset import load_dataset
    from benchmarks.models.baselines import run_prior

    return run_prior(load_dataset(dataset_root), tmp_path / "results").path


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda t: t.replace(t.splitlines()[1].split(",")[2], "abc", 1), "'abc' is not a probability"),
        (lambda t: t + t.splitlines()[1] + "\n", "twice"),
        (lambda t: "image,split\n", "label columns"),
        (lambda t: "\n".join(t.splitlines()[:3]) + "\n", "no prediction"),
        (lambda t: t[: len(t) // 2], "not a probability"),
    ],
)
def test_evaluate_refuses_damaged_predictions(capsys, tmp_path, small_dataset, damage, message):
    run = _prior_run(tmp_path, small_dataset)
    csv = run / "predictions.csv"
    csv.write_text(damage(csv.read_text()))
    refused(capsys, ["evaluate", str(run)], message)


@pytest.mark.parametrize(
    "run_json",
    [
        "null",
        "[]",
        '{"run_id": "x", "kind": "prior", "labels": ["a"], "dataset": "d", "status": "done"}',
        '{"run_id": "x", "kind": "prior", "labels": ["a"], "dataset": {}, "status": "alive"}',
    ],
)
def test_one_damaged_run_json_does_not_take_the_leaderboard_down(capsys, tmp_path, small_dataset, run_json):
    run = _prior_run(tmp_path, small_dataset)
    bad = tmp_path / "results" / "damaged-run"
    bad.mkdir()
    (bad / "run.json").write_text(run_json)
    assert (
        benchmarks_main(["leaderboard", "--dataset", str(small_dataset), "--results", str(tmp_path / "results")]) == 0
    )
    assert run.name in capsys.readouterr().out
    refused(capsys, ["evaluate", str(bad)], "run.json")


def test_damaged_metrics_json_is_one_line_in_the_predict_tool(capsys, tmp_path, small_dataset):
    run = _prior_run(tmp_path, small_dataset)
    (run / "metrics.json").write_text("{truncated")
    _predict(capsys, run, next((small_dataset / "images").iterdir()), "metrics.json")


def test_leaderboard_never_rewrites_a_damaged_metrics_json(tmp_path, small_dataset):
    from benchmarks.evaluation.leaderboard import leaderboard

    run = _prior_run(tmp_path, small_dataset)
    (run / "metrics.json").write_text("{truncated")
    table = leaderboard(tmp_path / "results")
    assert table.loc[0, "macro_auc"] == 0.5  # derived in memory from predictions.csv
    assert (run / "metrics.json").read_text() == "{truncated"  # a reader never writes: read-only deployments work


def _cloud(capsys, argv: list[str], message: str) -> None:
    from cloud_baselines.cli import main as cloud_main

    refused(capsys, argv, message, cloud_main)


def _predict(capsys, run: Path, image: Path, message: str) -> None:
    from tools.predict import main as predict_main

    refused(capsys, [str(run), str(image)], message, predict_main)


def _temp_exports() -> set[str]:
    import tempfile

    return {p.name for p in Path(tempfile.gettempdir()).glob("tm-export-*")}


def _encrypted_zip(path: Path) -> Path:
    """A zip whose member says it is encrypted (Python cannot write encrypted zips; the flag is what readers see)."""
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("keras_model.h5", b"\x00" * 64)
        archive.writestr("labels.txt", "0 a\n1 b\n")
    data = bytearray(path.read_bytes())
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (start := data.find(signature, start)) != -1:
            data[start + flag_offset] |= 0x1
            start += 4
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("kind", ["escape", "encrypted", "garbage"])
def test_tm_eval_zip_is_checked_and_leaves_no_temporary_folder(capsys, tmp_path, small_dataset, kind):
    import zipfile

    before = _temp_exports()
    zip_path = tmp_path / "converted_keras.zip"
    if kind == "escape":
        with zipfile.ZipFile(zip_path, "w") as archive:
            archive.writestr("../../outside.txt", "x")
        message = "leads outside"
    elif kind == "encrypted":
        _encrypted_zip(zip_path)
        message = "encrypted"
    else:
        zip_path.write_bytes(b"PK\x03\x04 truncated")
        message = "not a valid zip"
    _cloud(capsys, ["tm-eval", str(zip_path), str(small_dataset), "--results", str(tmp_path / "r")], message)
    assert _temp_exports() == before and not (tmp_path.parent / "outside.txt").exists()


TINY_TOPOLOGY = {
    "class_name": "Sequential",
    "config": {"layers": [{"class_name": "InputLayer", "config": {"batch_input_shape": [None, 8, 8, 3]}}]},
}
LAMBDA_TOPOLOGY = {
    "class_name": "Sequential",
    "config": {
        "layers": [{"class_name": "Lambda", "config": {"function": "os.system", "batch_input_shape": [None, 8]}}]
    },
}


@pytest.mark.parametrize(
    "model_json, message",
    [
        ([1, 2], "expected a JSON object"),
        ({"weightsManifest": []}, "no modelTopology"),
        ({"modelTopology": TINY_TOPOLOGY, "weightsManifest": [{"weights": []}]}, "weightsManifest should be"),
        (
            {"modelTopology": TINY_TOPOLOGY, "weightsManifest": [{"paths": ["../../secret.bin"], "weights": []}]},
            "leads outside",
        ),
        ({"modelTopology": TINY_TOPOLOGY, "weightsManifest": [{"paths": ["/etc/passwd"], "weights": []}]}, "absolute"),
        ({"modelTopology": LAMBDA_TOPOLOGY, "weightsManifest": []}, "'Lambda' is not one this reader rebuilds"),
        ({"format": "graph-model", "modelTopology": {"node": []}}, "score it with vertex-eval"),
    ],
)
def test_tfjs_manifest_is_checked(capsys, tmp_path, small_dataset, model_json, message):
    export = tmp_path / "tfjs"
    export.mkdir()
    (export / "model.json").write_text(json.dumps(model_json))
    (tmp_path / "secret.bin").write_bytes(b"\x00" * 16)
    _cloud(capsys, ["tm-eval", str(export), str(small_dataset), "--results", str(tmp_path / "r")], message)


GRAPH_NODES = [
    {"name": "image", "op": "Placeholder", "attr": {"dtype": {"type": "DT_FLOAT"}, "shape": {"shape": {"dim": [
        {"size": "1"}, {"size": "8"}, {"size": "8"}, {"size": "3"}]}}}},
    {"name": "w", "op": "Const", "attr": {"dtype": {"type": "DT_FLOAT"}, "value": {"tensor": {"dtype": "DT_FLOAT"}}}},
]  # fmt: skip


@pytest.mark.parametrize(
    "nodes, weights, message",
    [
        (GRAPH_NODES + [{"name": "scores", "op": "NoSuchOp", "input": ["image"]}], ["w"], "cannot run this graph"),
        (GRAPH_NODES + [{"name": "scores", "op": "Identity", "input": ["image"]}], ["image"], "no constant node"),
        (GRAPH_NODES[1:] + [{"name": "scores", "op": "Identity", "input": ["w"]}], ["w"], "0 input placeholders"),
        (GRAPH_NODES + [{"name": "out", "op": "Identity", "input": ["image"]}], ["w"], "no output node named scores"),
    ],
)
def test_graph_models_are_checked(capsys, tmp_path, small_dataset, nodes, weights, message):
    export = tmp_path / "automl_tfjs"
    export.mkdir()
    manifest = [{"paths": ["w.bin"], "weights": [{"name": n, "shape": [1], "dtype": "float32"} for n in weights]}]
    (export / "w.bin").write_bytes(b"\x00" * 4 * len(weights))
    spec = {"format": "graph-model", "modelTopology": {"node": nodes}, "weightsManifest": manifest}
    (export / "model.json").write_text(json.dumps(spec))
    (export / "dict.txt").write_text("a\n")
    _cloud(capsys, ["vertex-eval", str(export), str(small_dataset), "--results", str(tmp_path / "r")], message)


@pytest.mark.parametrize("content", [b"", b"\x00garbage" * 10])
def test_damaged_container_export_is_one_line(capsys, tmp_path, small_dataset, content):
    export = tmp_path / "container"
    export.mkdir()
    (export / "saved_model.pb").write_bytes(content)
    _cloud(capsys, ["vertex-eval", str(export), str(small_dataset), "--results", str(tmp_path / "r")], "SavedModel")


def test_edge_manifest_cannot_point_outside_the_export(capsys, tmp_path, small_dataset):
    export = tmp_path / "edge"
    export.mkdir()
    (export / "manifest.json").write_text(json.dumps({"modelFile": "../../../etc/hostname", "labelsFile": "dict.txt"}))
    _cloud(capsys, ["vertex-eval", str(export), str(small_dataset), "--results", str(tmp_path / "r")], "modelFile")


@pytest.mark.parametrize(
    "family, content", [("fastai", "{not json"), ("keras", "[1]"), ("fastai", '{"labels": ["a"]}')]
)
def test_damaged_serving_json_is_one_line(capsys, tmp_path, small_dataset, family, content):
    run = _prior_run(tmp_path, small_dataset)
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "kind": family}))
    (run / "serving.json").write_text(content)
    _predict(capsys, run, next((small_dataset / "images").iterdir()), "serving.json")


@pytest.mark.parametrize(
    "content, command",
    [
        ("{not json", "vertex-ingest"),
        ('{"instance": {"content": "gs://b/images/x.jpg"}, "prediction": "not an object"}\n', "vertex-ingest"),
        ("[1, 2, 3]", "vision-ingest"),
        ('{"responses": "nope"}', "vision-ingest"),
        ("\x00\x01binary", "roboflow-ingest"),
        ('{"image": "../../etc/passwd", "response": {}}\n', "roboflow-ingest"),
    ],
)
def test_broken_service_outputs_are_one_line(capsys, tmp_path, small_dataset, content, command):
    source = tmp_path / ("predictions.jsonl" if command != "vision-ingest" else "responses.json")
    source.write_text(content)
    _cloud(capsys, [command, str(source), str(small_dataset), "--results", str(tmp_path / "r")], "")
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())  # no half-made run


@pytest.mark.parametrize(
    "argv, message",
    [
        (["import", "voc", "/no/such/voc", "/tmp/never-made"], "folder not found"),
        (["import", "folder", "/no/such/folder", "/tmp/never-made"], "folder not found"),
        (["compare", "/no/run/a", "/no/run/b"], "run folder not found"),
        (["report", "/no/such/dataset"], "dataset folder not found"),
    ],
)
def test_missing_paths_are_one_line(capsys, argv, message):
    refused(capsys, argv, message)
    assert not Path("/tmp/never-made").exists()
