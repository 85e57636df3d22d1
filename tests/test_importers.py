import json
import shutil

import numpy as np
import pytest
from PIL import Image

from benchmarks.data import importers
from benchmarks.data.splitting import stratified_splits
from benchmarks.errors import DatasetError


def _random_image(path, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(path)


def test_folder_per_class_import_makes_stratified_splits(tmp_path):
    for label in ("cat", "dog", "bird"):
        for i in range(20):
            _random_image(tmp_path / "src" / label / f"{i}.png", hash((label, i)) % 2**32)
    dataset = importers.materialize(
        importers.read_folder(tmp_path / "src"), tmp_path / "out", name="pets", source="test"
    )
    assert dataset.labels == ["bird", "cat", "dog"]
    counts = dataset.counts()
    assert counts.loc["(images)"].tolist() == [42, 9, 9]
    assert (counts.drop("(images)")[["valid", "test"]] == 3).all().all()  # stratified: 3 of each label per eval split
    assert (tmp_path / "out" / "images" / "cat" / "0.png").is_file()


def test_folder_import_keeps_given_split_folders(tmp_path):
    for split in ("train", "val", "test"):
        for label in ("a", "b"):
            _random_image(tmp_path / "src" / split / label / "x.png", hash((split, label)) % 2**32)
    dataset = importers.materialize(importers.read_folder(tmp_path / "src"), tmp_path / "out", name="x", source="test")
    assert sorted(dataset.items["split"]) == ["test", "test", "train", "train", "valid", "valid"]


def test_exact_and_near_duplicates_share_a_split(tmp_path):
    for i in range(30):
        _random_image(tmp_path / "src" / ("a" if i % 2 else "b") / f"{i}.png", i)
    original = Image.open(tmp_path / "src" / "a" / "1.png")
    shutil.copy(tmp_path / "src" / "a" / "1.png", tmp_path / "src" / "a" / "copy.png")
    original.resize((40, 40)).save(tmp_path / "src" / "a" / "resized.png")
    dataset = importers.materialize(importers.read_folder(tmp_path / "src"), tmp_path / "out", name="x", source="test")
    split_of = dict(zip(dataset.items["image"], dataset.items["split"]))
    assert split_of["images/a/1.png"] == split_of["images/a/copy.png"] == split_of["images/a/resized.png"]


def test_fastai_csv_import_reads_multilabels_and_is_valid(tmp_path):
    rows = ["fname,labels,is_valid"]
    for i in range(40):
        labels = ["haze primary", "clear", "primary water", "clear primary"][i % 4]
        _random_image(tmp_path / "train" / f"img{i}.jpg", i)
        rows.append(f"img{i},{labels},{'True' if i % 5 == 0 else 'False'}")
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    dataset = importers.materialize(
        importers.read_fastai_csv(tmp_path / "train.csv", tmp_path / "train"),
        tmp_path / "out",
        name="planet",
        source="test",
    )
    assert dataset.labels == ["clear", "haze", "primary", "water"]
    assert (dataset.items["split"] == "valid").sum() == 8  # is_valid rows stay valid
    assert (dataset.items["split"] == "test").sum() > 0  # test carved out of the rest
    assert dataset.items.loc[dataset.items["image"] == "images/img0.jpg", "labels"].item() == ("haze", "primary")


def test_fastai_csv_missing_image_names_row(tmp_path):
    (tmp_path / "train.csv").write_text("fname,labels\nghost,cat\n")
    with pytest.raises(DatasetError, match=r"train.csv row 2: image 'ghost' not found"):
        importers.read_fastai_csv(tmp_path / "train.csv")


def test_voc_import_uses_object_names(tmp_path):
    voc = tmp_path / "VOC"
    (voc / "Annotations").mkdir(parents=True)
    for i in range(12):
        _random_image(voc / "JPEGImages" / f"{i:06d}.jpg", i)
        objects = "".join(
            f"<object><name>{n}</name></object>" for n in (["dog", "person"] if i % 2 else ["car", "car"])
        )
        (voc / "Annotations" / f"{i:06d}.xml").write_text(
            f"<annotation><filename>{i:06d}.jpg</filename>{objects}</annotation>"
        )
    records = importers.read_voc(voc)
    assert records[1].labels == ("dog", "person") and records[0].labels == ("car",)


def test_coco_import_uses_categories_present(tmp_path):
    images = [{"id": i, "file_name": f"{i}.jpg"} for i in range(4)]
    for i in range(4):
        _random_image(tmp_path / "imgs" / f"{i}.jpg", i)
    annotations = [
        {"image_id": 0, "category_id": 1},
        {"image_id": 0, "category_id": 2},
        {"image_id": 1, "category_id": 2},
    ]
    (tmp_path / "instances.json").write_text(
        json.dumps(
            {
                "images": images,
                "annotations": annotations,
                "categories": [{"id": 1, "name": "traffic light"}, {"id": 2, "name": "dog"}],
            }
        )
    )
    records = importers.read_coco(tmp_path / "instances.json", tmp_path / "imgs")
    assert [r.labels for r in records] == [("dog", "traffic light"), ("dog",), (), ()]


def test_label_names_with_spaces_are_renamed_and_recorded(tmp_path):
    for i in range(12):
        _random_image(tmp_path / "src" / ("traffic light" if i % 2 else "dog") / f"{i}.png", i)
    dataset = importers.materialize(importers.read_folder(tmp_path / "src"), tmp_path / "out", name="x", source="test")
    assert "traffic_light" in dataset.labels
    assert json.loads((tmp_path / "out" / "dataset.json").read_text())["label_renames"] == {
        "traffic light": "traffic_light"
    }


def test_import_refuses_non_empty_destination(tmp_path):
    _random_image(tmp_path / "src" / "a" / "1.png", 1)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(DatasetError, match="already exists and is not empty"):
        importers.materialize(importers.read_folder(tmp_path / "src"), tmp_path / "out", name="x", source="test")
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


def test_stratified_split_is_seeded_and_balances_rare_labels():
    rng = np.random.default_rng(0)
    targets = (rng.random((400, 5)) < [0.5, 0.3, 0.1, 0.05, 0.02]).astype(int)
    first = stratified_splits(targets, seed=3)
    assert (first == stratified_splits(targets, seed=3)).all()
    assert not (first == stratified_splits(targets, seed=4)).all()
    for label in range(5):
        share = targets[first == "test", label].sum() / targets[:, label].sum()
        assert 0.05 <= share <= 0.3
        assert targets[first == "train", label].sum() > 0


def test_plain_background_scenes_are_not_near_duplicates(tmp_path):
    from benchmarks.data.image_hashes import duplicate_groups, perceptual_signature

    paths = []
    for i, (colour, dot) in enumerate(
        [((30, 160, 60), (20, 20)), ((160, 60, 30), (40, 10))]
    ):  # same flat look, other colours
        image = Image.new("RGB", (64, 64), colour)
        image.putpixel(dot, (0, 0, 0))
        paths.append(tmp_path / f"{i}.png")
        image.save(paths[-1])
    image.resize((50, 50)).save(tmp_path / "resized.png")  # a true near duplicate of the second
    paths.append(tmp_path / "resized.png")
    signatures = [perceptual_signature(p) for p in paths]
    groups = duplicate_groups(["a", "b", "c"], [s[0] for s in signatures], [s[1] for s in signatures])
    assert groups[0] != groups[1] and groups[1] == groups[2]
