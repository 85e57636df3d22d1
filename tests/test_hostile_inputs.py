"""Hostile and broken inputs, made at test time: each is refused with one line (exit 2), no traceback, the source
untouched, nothing written outside the destination, nothing half-written left behind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.cli import main as benchmarks_main
from tests.conftest import make_dataset

VICTIM_TEXT = "precious data, must survive"


def _image(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def sandbox(tmp_path):
    """A source folder with images, a victim file outside it, and a destination that must be the only thing written."""
    src = tmp_path / "deep" / "er" / "src"
    for i in range(6):
        _image(src / "images" / f"img{i}.jpg", i)
    victim = tmp_path / "VICTIM.jpg"
    victim.write_text(VICTIM_TEXT)
    return {"root": tmp_path, "src": src, "victim": victim, "dest": tmp_path / "dest"}


def _refused(capsys, argv: list[str], message: str, main=benchmarks_main) -> str:
    """``main(argv)`` (a CLI: benchmarks, cloud_baselines, tools.predict) exits 2 with one line holding ``message``."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert message in err, err
    return err


def _import_argv(fmt: str, source: Path, box) -> list[str]:
    return ["import", fmt, str(source), str(box["dest"]), "--images", str(box["src"] / "images")]


def _nothing_escaped(box) -> None:
    assert box["victim"].read_text() == VICTIM_TEXT
    leftovers = [p.name for p in box["root"].iterdir() if p.name.endswith(".partial")]
    assert not leftovers and not box["dest"].exists()


ESCAPES = ["../../../VICTIM.jpg", "/etc/passwd", "images/../../../../VICTIM.jpg", "..\\..\\..\\VICTIM.jpg"]


@pytest.mark.parametrize("name", ESCAPES)
def test_coco_file_name_cannot_leave_the_image_folder(capsys, sandbox, name):
    coco = {
        "images": [{"id": 1, "file_name": name}, {"id": 2, "file_name": "img1.jpg"}],
        "categories": [{"id": 1, "name": "cat"}],
        "annotations": [{"image_id": 1, "category_id": 1}, {"image_id": 2, "category_id": 1}],
    }
    (sandbox["src"] / "coco.json").write_text(json.dumps(coco))
    argv = _import_argv("coco", sandbox["src"] / "coco.json", sandbox)
    _refused(capsys, argv, "file_name")
    _nothing_escaped(sandbox)


@pytest.mark.parametrize("name", ESCAPES)
def test_voc_filename_cannot_leave_the_image_folder(capsys, sandbox, name):
    voc = sandbox["src"] / "voc"
    (voc / "Annotations").mkdir(parents=True)
    shutil.copytree(sandbox["src"] / "images", voc / "JPEGImages")
    (voc / "Annotations" / "a.xml").write_text(
        f"<annotation><filename>{name}</filename><object><name>cat</name></object></annotation>"
    )
    _refused(capsys, ["import", "voc", str(voc), str(sandbox["dest"])], "<filename>")
    _nothing_escaped(sandbox)


@pytest.mark.parametrize("name", ESCAPES)
def test_fastai_csv_fname_cannot_leave_the_image_folder(capsys, sandbox, name):
    rows = ["fname,labels"] + [f"img{i}.jpg,cat" for i in range(5)] + [f"{name},dog"]
    (sandbox["src"] / "train.csv").write_text("\n".join(rows) + "\n")
    argv = _import_argv("fastai-csv", sandbox["src"] / "train.csv", sandbox)
    _refused(capsys, argv, "row 7")
    _nothing_escaped(sandbox)


def test_symlink_out_of_the_image_folder_is_refused(capsys, sandbox):
    (sandbox["src"] / "images" / "link.jpg").symlink_to(sandbox["victim"])
    coco = {"images": [{"id": 1, "file_name": "link.jpg"}], "categories": [{"id": 1, "name": "cat"}], "annotations": []}
    (sandbox["src"] / "coco.json").write_text(json.dumps(coco))
    argv = _import_argv("coco", sandbox["src"] / "coco.json", sandbox)
    _refused(capsys, argv, "leads outside")
    _nothing_escaped(sandbox)


@pytest.mark.parametrize(
    "content, message",
    [
        ('fname,labels\n"img0.jpg,cat\nimg1.jpg,dog\n', "not a readable CSV"),
        (b"\x00\xff\xfe\x89PNG\x00\x00garbage\xff" * 20, "not a readable CSV"),
        ("", "not a readable CSV"),
        ("fname\nimg0.jpg\n", "at least two columns"),
    ],
)
def test_broken_fastai_csv_is_one_line(capsys, sandbox, content, message):
    path = sandbox["src"] / "train.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    before = path.read_bytes()
    argv = _import_argv("fastai-csv", path, sandbox)
    _refused(capsys, argv, message)
    assert path.read_bytes() == before
    _nothing_escaped(sandbox)


@pytest.mark.parametrize(
    "coco, message",
    [
        ([1, 2, 3], "not a COCO instances file"),
        ({"images": [], "annotations": []}, "not a COCO instances file"),
        (
            {"images": [{"id": 1, "file_name": "img0.jpg"}], "categories": [{"id": 1, "name": " "}], "annotations": []},
            "empty name",
        ),
        ({"images": [{"id": 1}], "categories": [], "annotations": []}, "not a COCO instances file"),
        ("{not json", "not a COCO instances file"),
    ],
)
def test_broken_coco_is_one_line(capsys, sandbox, coco, message):
    path = sandbox["src"] / "coco.json"
    path.write_text(coco if isinstance(coco, str) else json.dumps(coco))
    argv = _import_argv("coco", path, sandbox)
    _refused(capsys, argv, message)
    _nothing_escaped(sandbox)


def test_import_into_an_existing_file_is_refused(capsys, sandbox):
    (sandbox["src"] / "cat").mkdir()
    _image(sandbox["src"] / "cat" / "a.jpg")
    sandbox["dest"].write_text("not a folder")
    _refused(capsys, ["import", "folder", str(sandbox["src"]), str(sandbox["dest"])], "is a file")
    assert sandbox["dest"].read_text() == "not a folder"


def test_class_folder_named_by_spaces_is_refused_and_leaves_nothing(capsys, sandbox):
    for name in ("cat", "   "):
        for i in range(3):
            _image(sandbox["src"] / "classes" / name / f"{i}.jpg", i)
    _refused(capsys, ["import", "folder", str(sandbox["src"] / "classes"), str(sandbox["dest"])], "only spaces")
    _nothing_escaped(sandbox)


def test_a_failure_while_copying_removes_the_partial_folder(sandbox, monkeypatch):
    from benchmarks.data import importers
    from benchmarks.errors import DatasetError

    for i in range(4):
        _image(sandbox["src"] / "classes" / ("a" if i % 2 else "b") / f"{i}.jpg", i)
    records = importers.read_folder(sandbox["src"] / "classes")

    def broken_copy(*_):
        raise OSError("disk full")

    monkeypatch.setattr(importers.shutil, "copy2", broken_copy)
    with pytest.raises(OSError):
        importers.materialize(records, sandbox["dest"], name="x", source="test")
    _nothing_escaped(sandbox)
    with pytest.raises(DatasetError):
        importers.materialize([], sandbox["dest"], name="x", source="test")


@pytest.mark.parametrize(
    "labels_csv", ["image,labels,split\n../outside.png,a,train\n", "image,labels,split\n/etc/passwd,a,train\n"]
)
def test_labels_csv_paths_stay_inside_the_dataset(capsys, small_dataset, labels_csv):
    (small_dataset / "labels.csv").write_text(labels_csv)
    _refused(capsys, ["eda", str(small_dataset)], "image path")


@pytest.mark.parametrize("content", ["[1, 2]", "null", '"text"', "{broken"])
def test_dataset_json_that_is_not_an_object(capsys, small_dataset, content):
    (small_dataset / "dataset.json").write_text(content)
    _refused(capsys, ["eda", str(small_dataset)], "dataset.json")


def test_eda_of_a_dataset_without_labels_is_one_line(capsys, tmp_path):
    root = make_dataset(
        tmp_path / "nolabels", [(f"images/{i}.png", "", s) for i, s in enumerate(["train", "valid", "test"] * 2)], []
    )
    code = benchmarks_main(["eda", str(root)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "label" in err


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
    _refused(capsys, ["evaluate", str(run)], message)


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
    _refused(capsys, ["evaluate", str(bad)], "run.json")


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

    _refused(capsys, argv, message, cloud_main)


def _predict(capsys, run: Path, image: Path, message: str) -> None:
    from tools.predict import main as predict_main

    _refused(capsys, [str(run), str(image)], message, predict_main)


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
    _refused(capsys, argv, message)
    assert not Path("/tmp/never-made").exists()
