import json
from collections import defaultdict

import pytest

from benchmarks.data.dataset import load_dataset
from benchmarks.data.stampscenes import MIN_VISIBLE, build_stampscenes
from benchmarks.errors import DatasetError


def _objects(root):
    return [json.loads(line) for line in (root / "objects.jsonl").read_text().splitlines()]


def test_builds_a_valid_dataset_with_requested_size(tiny_scenes):
    dataset = load_dataset(tiny_scenes)
    assert dataset.labels == ["bird", "fruit", "insect", "vehicle"]
    assert dataset.counts().loc["(images)"].tolist() == [32, 8, 8]
    from PIL import Image

    assert Image.open(dataset.image_paths()[0]).size == (64, 64)


def test_splits_are_instance_disjoint(tiny_scenes):
    splits_of_stamp = defaultdict(set)
    for obj in _objects(tiny_scenes):
        splits_of_stamp[obj["stamp"]].add(obj["image"].split("/")[1])
    assert splits_of_stamp and all(len(s) == 1 for s in splits_of_stamp.values())
    info = json.loads((tiny_scenes / "dataset.json").read_text())
    for label in ("bird", "fruit", "insect", "vehicle"):
        assert {s["split"] for s in info["stamps"] if s["label"] == label} == {"train", "valid", "test"}


def test_every_label_is_a_visible_object_and_every_labelled_object_is_labelled(tiny_scenes):
    dataset = load_dataset(tiny_scenes)
    by_image = defaultdict(list)
    for obj in _objects(tiny_scenes):
        by_image[obj["image"]].append(obj)
    for image, labels in zip(dataset.items["image"], dataset.items["labels"]):
        labelled = [o for o in by_image[image] if o["label"]]
        assert labelled, f"{image} has no labelled object"
        assert set(labels) == {o["label"] for o in labelled}
        assert all(o["visible"] >= MIN_VISIBLE for o in labelled)


def test_same_seed_same_dataset(tmp_path, fake_stamps, tiny_scenes):
    again = build_stampscenes(tmp_path / "again", size=48, img_size=64, seed=1, stamps_dir=fake_stamps, workers=2)
    assert again.fingerprint == load_dataset(tiny_scenes).fingerprint
    other = build_stampscenes(tmp_path / "other", size=48, img_size=64, seed=2, stamps_dir=fake_stamps, workers=1)
    assert other.fingerprint != again.fingerprint


def test_missing_stamps_folder_says_how_to_get_it(tmp_path):
    with pytest.raises(DatasetError, match="apt-get install tuxpaint-stamps-default"):
        build_stampscenes(tmp_path / "out", size=48, stamps_dir=tmp_path / "no-stamps")


def test_refuses_to_overwrite(tmp_path, fake_stamps):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "file").write_text("x")
    with pytest.raises(DatasetError, match="not empty"):
        build_stampscenes(tmp_path / "out", size=48, stamps_dir=fake_stamps)


def test_lookalikes_in_a_label_folder_are_distractors_not_that_label():
    from benchmarks.data.stamp_catalog import is_distractor, label_for

    assert label_for("animals/insects/cartoon/snail") is None and is_distractor("animals/insects/cartoon/snail")
    assert label_for("animals/insects/cartoon/ladybug") == "insect" and not is_distractor(
        "animals/insects/cartoon/ladybug"
    )


def test_a_stamp_too_thin_to_see_at_a_small_size_is_left_out_not_a_crash(tmp_path, fake_stamps):
    import shutil

    from PIL import Image, ImageDraw

    stamps = tmp_path / "stamps"
    shutil.copytree(fake_stamps, stamps)
    for path in (stamps / "animals/birds").glob("*.png"):  # diagonal hairlines: no solid pixel once shrunk
        image = Image.new("RGBA", (300, 300), (0, 0, 0, 0))
        ImageDraw.Draw(image).line((0, 0, 299, 299), fill=(0, 0, 0, 255), width=1)
        image.save(path)
    dataset = build_stampscenes(tmp_path / "out", size=48, img_size=32, seed=3, stamps_dir=stamps, workers=1)
    assert len(dataset.items) == 48 and all(o["visible"] > 0 for o in _objects(dataset.root))
