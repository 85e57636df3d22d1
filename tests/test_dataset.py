import pytest

from benchmarks.data.dataset import load_dataset
from benchmarks.data.images import open_rgb
from benchmarks.errors import DatasetError


def test_loads_labels_splits_and_targets(small_dataset):
    dataset = load_dataset(small_dataset)
    assert dataset.labels == ["cat", "dog"]
    assert len(dataset.rows("train")) == 4
    assert dataset.targets("test").tolist() == [[1, 0], [0, 1], [1, 1], [0, 0]]
    assert dataset.fingerprint.startswith("sha256:")


def test_fingerprint_changes_with_image_bytes(small_dataset):
    before = load_dataset(small_dataset).fingerprint
    path = small_dataset / "images" / "train0.png"
    path.write_bytes(path.read_bytes() + b"\0")
    assert load_dataset(small_dataset).fingerprint != before


def _rewrite_csv(root, text):
    (root / "labels.csv").write_text(text)


@pytest.mark.parametrize(
    "csv_text, message",
    [
        ("image,labels\nimages/train0.png,cat\n", "missing column 'split'"),
        ("image,labels,split\nimages/train0.png,cat,validation\n", "row 2: unknown split 'validation'"),
        (
            "image,labels,split\nimages/nothere.png,cat,train\n",
            "row 2: image 'images/nothere.png' is listed but missing",
        ),
        ("image,labels,split\nimages/train0.png,horse,train\n", "row 2: label 'horse' is not in the labels"),
        (
            "image,labels,split\nimages/train0.png,cat,train\nimages/valid0.png,dog,valid\n",
            "label 'dog' appears in valid but never in train",
        ),
        ("image,labels,split\n../outside.png,cat,train\n", "leads outside"),
    ],
)
def test_bad_labels_csv_is_one_clear_error(small_dataset, csv_text, message):
    _rewrite_csv(small_dataset, csv_text)
    with pytest.raises(DatasetError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        load_dataset(small_dataset)
    assert "\n" not in str(info.value)


def test_missing_folder_and_labels_csv(tmp_path):
    with pytest.raises(DatasetError, match="dataset folder not found"):
        load_dataset(tmp_path / "nope")
    tmp_path.joinpath("empty").mkdir()
    with pytest.raises(DatasetError, match="labels.csv.*missing"):
        load_dataset(tmp_path / "empty")


def test_labels_inferred_without_dataset_json(small_dataset):
    (small_dataset / "dataset.json").unlink()
    assert load_dataset(small_dataset).labels == ["cat", "dog"]


def test_damaged_dataset_json_is_named(small_dataset):
    (small_dataset / "dataset.json").write_text("{not json")
    with pytest.raises(DatasetError, match="dataset.json: not valid JSON"):
        load_dataset(small_dataset)


def test_unreadable_image_names_the_file(tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(DatasetError, match="broken.jpg: cannot read image"):
        open_rgb(broken)


def test_odd_modes_become_rgb(tmp_path):
    from PIL import Image

    for mode, colour in (("L", 128), ("RGBA", (10, 20, 30, 0)), ("CMYK", (0, 0, 0, 0)), ("I;16", 40000)):
        path = tmp_path / f"{mode.replace(';', '')}.{'tif' if mode in ('CMYK', 'I;16') else 'png'}"
        Image.new(mode, (8, 8), colour).save(path)
        image = open_rgb(path)
        assert image.mode == "RGB" and image.size == (8, 8)
    assert open_rgb(tmp_path / "RGBA.png").getpixel((0, 0)) == (255, 255, 255)  # transparent -> white
