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
from tests.conftest import make_dataset, refused

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
    refused(capsys, argv, "file_name")
    _nothing_escaped(sandbox)


@pytest.mark.parametrize("name", ESCAPES)
def test_voc_filename_cannot_leave_the_image_folder(capsys, sandbox, name):
    voc = sandbox["src"] / "voc"
    (voc / "Annotations").mkdir(parents=True)
    shutil.copytree(sandbox["src"] / "images", voc / "JPEGImages")
    (voc / "Annotations" / "a.xml").write_text(
        f"<annotation><filename>{name}</filename><object><name>cat</name></object></annotation>"
    )
    refused(capsys, ["import", "voc", str(voc), str(sandbox["dest"])], "<filename>")
    _nothing_escaped(sandbox)


@pytest.mark.parametrize("name", ESCAPES)
def test_fastai_csv_fname_cannot_leave_the_image_folder(capsys, sandbox, name):
    rows = ["fname,labels"] + [f"img{i}.jpg,cat" for i in range(5)] + [f"{name},dog"]
    (sandbox["src"] / "train.csv").write_text("\n".join(rows) + "\n")
    argv = _import_argv("fastai-csv", sandbox["src"] / "train.csv", sandbox)
    refused(capsys, argv, "row 7")
    _nothing_escaped(sandbox)


def test_symlink_out_of_the_image_folder_isrefused(capsys, sandbox):
    (sandbox["src"] / "images" / "link.jpg").symlink_to(sandbox["victim"])
    coco = {"images": [{"id": 1, "file_name": "link.jpg"}], "categories": [{"id": 1, "name": "cat"}], "annotations": []}
    (sandbox["src"] / "coco.json").write_text(json.dumps(coco))
    argv = _import_argv("coco", sandbox["src"] / "coco.json", sandbox)
    refused(capsys, argv, "leads outside")
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
    refused(capsys, argv, message)
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
    refused(capsys, argv, message)
    _nothing_escaped(sandbox)


def test_import_into_an_existing_file_isrefused(capsys, sandbox):
    (sandbox["src"] / "cat").mkdir()
    _image(sandbox["src"] / "cat" / "a.jpg")
    sandbox["dest"].write_text("not a folder")
    refused(capsys, ["import", "folder", str(sandbox["src"]), str(sandbox["dest"])], "is a file")
    assert sandbox["dest"].read_text() == "not a folder"


def test_class_folder_named_by_spaces_is_refused_and_leaves_nothing(capsys, sandbox):
    for name in ("cat", "   "):
        for i in range(3):
            _image(sandbox["src"] / "classes" / name / f"{i}.jpg", i)
    refused(capsys, ["import", "folder", str(sandbox["src"] / "classes"), str(sandbox["dest"])], "only spaces")
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
    refused(capsys, ["eda", str(small_dataset)], "image path")


@pytest.mark.parametrize("content", ["[1, 2]", "null", '"text"', "{broken"])
def test_dataset_json_that_is_not_an_object(capsys, small_dataset, content):
    (small_dataset / "dataset.json").write_text(content)
    refused(capsys, ["eda", str(small_dataset)], "dataset.json")


def test_eda_of_a_dataset_without_labels_is_one_line(capsys, tmp_path):
    root = make_dataset(
        tmp_path / "nolabels", [(f"images/{i}.png", "", s) for i, s in enumerate(["train", "valid", "test"] * 2)], []
    )
    code = benchmarks_main(["eda", str(root)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "label" in err
