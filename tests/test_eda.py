import json
import shutil

import pytest
from PIL import Image

from benchmarks.data.cleaning import clean_dataset
from benchmarks.data.dataset import load_dataset
from benchmarks.data.eda import scan_images
from benchmarks.data.eda_report import run_eda
from benchmarks.errors import DatasetError
from tests.conftest import make_dataset


@pytest.fixture
def flawed(tmp_path):
    rows = [(f"images/{s}{i}.png", ["a", "b", "a b"][i % 3], s) for s in ("train", "valid", "test") for i in range(6)]
    root = make_dataset(tmp_path / "flawed", rows, ["a", "b"])
    shutil.copy(root / "images/train0.png", root / "images/test0.png")  # leakage: same picture in train and test
    (root / "images/valid1.png").write_bytes(b"")  # zero-byte file
    Image.new("L", (24, 24), 90).save(root / "images/train2.png")  # grayscale
    rotated = Image.new("RGB", (24, 24), (1, 2, 3))
    exif = rotated.getexif()
    exif[0x0112] = 6
    rotated.save(root / "images/train3.jpg", exif=exif)
    labels = (root / "labels.csv").read_text().replace("images/train3.png", "images/train3.jpg")
    (root / "labels.csv").write_text(labels)
    return load_dataset(root, require_train_positives=False)


def test_eda_reports_each_problem_with_a_verdict(flawed):
    report = run_eda(flawed)
    verdicts = {c["check"]: c for c in report["checks"]}
    assert (
        verdicts["unreadable files"]["verdict"] == "fail"
        and "valid1.png" in verdicts["unreadable files"]["examples"][0]
    )
    assert verdicts["duplicates across splits (leakage)"]["verdict"] == "fail"
    assert verdicts["exact duplicates"]["verdict"] == "warn"
    assert verdicts["colour modes"]["verdict"] == "info"
    assert verdicts["EXIF rotation"]["examples"] == ["images/train3.jpg"]
    assert verdicts["labels with too few examples"]["verdict"] == "warn"
    on_disk = json.loads((flawed.root / "eda" / "report.json").read_text())
    assert on_disk["statistics"]["images"] == {"train": 6, "valid": 6, "test": 6}
    assert (flawed.root / "eda" / "report.html").is_file() and (flawed.root / "eda" / "samples_per_label.png").is_file()


def test_remedies_write_a_clean_copy_and_leave_the_source_alone(flawed, tmp_path):
    before = (flawed.root / "labels.csv").read_text()
    facts = scan_images(flawed)
    cleaned = clean_dataset(flawed, facts, tmp_path / "clean", drop_corrupt=True, dedupe=True, resplit=False)
    images = set(cleaned.items["image"])
    assert "images/valid1.png" not in images and "images/test0.png" not in images and "images/train0.png" in images
    assert (flawed.root / "labels.csv").read_text() == before
    assert cleaned.info["derived_from"]["fingerprint"] == flawed.fingerprint
    assert "dropped 1 unreadable" in cleaned.info["derived_from"]["remedies"][0]


def test_remedies_without_drop_corrupt_refuse_unreadable_files(flawed, tmp_path):
    with pytest.raises(DatasetError, match="add --drop-corrupt"):
        clean_dataset(flawed, scan_images(flawed), tmp_path / "clean", drop_corrupt=False, dedupe=False, resplit=True)
