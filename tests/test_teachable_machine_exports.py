"""Teachable Machine's real exports (TFLite float and quantised, Keras, TF.js), and the dataset export for TM."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from benchmarks.data.dataset import load_dataset
from benchmarks.data.images import open_rgb
from benchmarks.errors import BenchmarkError
from benchmarks.exports.class_mapping import map_classes, read_indexed_labels
from cloud_baselines.cli import main as cloud_main
from cloud_baselines.teachable_machine import evaluate_tm_export, export_for_tm, open_tm_export
from cloud_baselines.vertex_automl import (
    open_edge_export,
)
from tests.cloud_helpers import (
    FLOWERS,
    FRUIT,
    FRUIT_IMAGES,
    PHOTOS,
    TM,
    dataset_from_files,
    true_fruit_class,
)


def test_tm_float_tflite_gets_every_sample_image_right():
    classifier, classes, _ = open_tm_export(FRUIT / "converted_tflite")
    for path in FRUIT_IMAGES:
        assert classes[classifier.predict(open_rgb(path)).argmax()] == true_fruit_class(path)


@pytest.mark.parametrize(
    ("open_export", "batches"),
    [
        (lambda: open_tm_export(FRUIT / "converted_tflite"), True),
        (lambda: open_tm_export(FRUIT / "converted_tflite_quantized"), True),
        (lambda: open_edge_export(FLOWERS), False),  # its graph has the batch of 1 baked in: one image per call
    ],
    ids=["tm-float", "tm-quantized", "automl-edge"],
)
def test_tflite_batches_score_what_single_calls_score(open_export, batches):
    """/predict/batch gives a TFLite export the whole batch in one interpreter call (input resized to N) where
    its graph allows, else one image per call; the scores are the same either way."""
    classifier = open_export()[0]
    images = [open_rgb(p) for p in (FRUIT_IMAGES[:5] + PHOTOS[:2])]
    batched = classifier.predict_batch(images)
    assert classifier._batchable == batches and classifier._batch == (len(images) if batches else 1)
    single = np.stack([classifier.predict(image) for image in images])
    np.testing.assert_allclose(batched, single, atol=1e-5)
    assert classifier.predict_batch(images[:3]).shape == (3, classifier.n_classes)


def test_tm_quantized_twin_reads_its_quantization_and_mostly_agrees():
    quantized, classes, _ = open_tm_export(FRUIT / "converted_tflite_quantized")
    float_model, _, _ = open_tm_export(FRUIT / "converted_tflite")
    described = quantized.describe()
    assert described["input_dtype"] == "uint8" and described["output_quantization"]["scale"] == pytest.approx(1 / 256)
    agree = [quantized.predict(open_rgb(p)).argmax() == float_model.predict(open_rgb(p)).argmax() for p in FRUIT_IMAGES]
    assert sum(agree) >= 10  # 11 of 12 (the 2021 quantized export is calibrated to [0, 1]; see FORMATS.md)
    assert abs(quantized.predict(open_rgb(FRUIT_IMAGES[0])).sum() - 1) < 0.02


@pytest.mark.parametrize("export", ["keras_waste4", "tfjs_trash5"])
def test_tm_keras_and_tfjs_exports_load_under_keras3(export):
    classifier, classes, _ = open_tm_export(TM / export)
    assert classifier.n_classes == len(classes) in (4, 5)
    scores = classifier.predict(
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 200, 3), dtype=np.uint8))
    )
    assert scores.shape == (len(classes),) and abs(scores.sum() - 1) < 1e-4


def test_tm_h5_matches_its_tfjs_sibling_format_and_converted_zip(tmp_path):
    with __import__("zipfile").ZipFile(tmp_path / "converted_keras.zip", "w") as archive:
        for name in ("keras_model.h5", "labels.txt"):
            archive.write(TM / "keras_waste4" / name, name)
    from_zip, classes, _ = open_tm_export(tmp_path / "converted_keras.zip")
    from_folder, _, _ = open_tm_export(TM / "keras_waste4")
    image = open_rgb(FRUIT_IMAGES[0])
    np.testing.assert_allclose(from_zip.predict(image), from_folder.predict(image), atol=1e-6)
    assert classes == ["cardboard", "plastic", "glass", "metal"]


def test_old_tfjs_export_without_image_size_uses_tm_default(tmp_path):
    folder = tmp_path / "tm"
    shutil.copytree(TM / "tfjs_trash5", folder)
    metadata = json.loads((folder / "metadata.json").read_text())
    metadata.pop("imageSize")
    (folder / "metadata.json").write_text(json.dumps(metadata))
    classifier, classes, _ = open_tm_export(folder)
    assert classifier.size == 224 and classes == metadata["labels"]


def test_tm_eval_writes_a_scored_run_with_the_mapping(tmp_path, capsys):
    labels = ["fresh_apple", "fresh_banana", "fresh_orange", "rotten_apple", "rotten_orange", "rotten_banana"]
    root = dataset_from_files(tmp_path / "fruit", FRUIT_IMAGES, lambda p: ["_".join(p.stem.split("_")[:2])], labels)
    run = evaluate_tm_export(FRUIT / "converted_tflite", load_dataset(root), tmp_path / "results")
    assert "class 'FRESH APPLE' -> fresh_apple" in capsys.readouterr().out
    info = json.loads((run.path / "run.json").read_text())
    assert info["kind"] == "teachable_machine" and info["params"]["single_label_by_construction"] is True
    metrics = json.loads((run.path / "metrics.json").read_text())
    assert metrics["overall"]["macro_roc_auc"] > 0.95


def test_labels_txt_with_spaces_and_two_digit_indexes(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("".join(f"{i} class number {i}\n" for i in range(12)))
    assert read_indexed_labels(path)[10] == "class number 10"
    path.write_text("0 a\nb\n")
    with pytest.raises(BenchmarkError, match=r"labels.txt:2: expected '<index> <class name>'"):
        read_indexed_labels(path)


def test_class_mapping_by_name_and_by_file(tmp_path):
    mapping = map_classes(["Fresh-Apple", "none"], ["fresh_apple", "pear"])
    assert mapping.targets == ["fresh_apple", None]
    assert any("label 'pear' has no class" in line for line in mapping.report())
    (tmp_path / "m.json").write_text(json.dumps({"none": "pear"}))
    assert map_classes(["Fresh-Apple", "none"], ["fresh_apple", "pear"], tmp_path / "m.json").targets == [None, "pear"]
    with pytest.raises(BenchmarkError, match="none of the model's classes"):
        map_classes(["x"], ["y"])


@pytest.mark.parametrize(
    "damage, message",
    [
        ("edgetpu", "an Edge TPU model"),
        ("truncated_tflite", "not a readable TFLite model"),
        ("label_count", "outputs 6 classes but its label file lists 5"),
        ("truncated_h5", "not a readable HDF5 model"),
        ("truncated_bin", "weights.bin is shorter"),
        ("empty", "no Teachable Machine export found"),
    ],
)
def test_bad_exports_are_one_clear_line(tmp_path, damage, message):
    folder = tmp_path / "export"
    folder.mkdir()
    if damage == "edgetpu":
        (folder / "model_edgetpu.tflite").write_bytes(b"TFL3" + b"\0" * 64 + b"edgetpu-custom-op")
        shutil.copy(FRUIT / "converted_tflite" / "labels.txt", folder)
    elif damage == "truncated_tflite":
        (folder / "model.tflite").write_bytes((FRUIT / "converted_tflite" / "model_unquant.tflite").read_bytes()[:5000])
        shutil.copy(FRUIT / "converted_tflite" / "labels.txt", folder)
    elif damage == "label_count":
        shutil.copy(FRUIT / "converted_tflite" / "model_unquant.tflite", folder)
        (folder / "labels.txt").write_text("0 a\n1 b\n2 c\n3 d\n4 e\n")
    elif damage == "truncated_h5":
        (folder / "keras_model.h5").write_bytes((TM / "keras_waste4" / "keras_model.h5").read_bytes()[:4000])
        shutil.copy(TM / "keras_waste4" / "labels.txt", folder)
    elif damage == "truncated_bin":
        for name in ("model.json", "metadata.json"):
            shutil.copy(TM / "tfjs_trash5" / name, folder)
        (folder / "weights.bin").write_bytes((TM / "tfjs_trash5" / "weights.bin").read_bytes()[:100000])
    dataset = tmp_path / "ds"
    dataset_from_files(dataset, FRUIT_IMAGES[:4], lambda p: ["a"], ["a", "b"])
    with pytest.raises(BenchmarkError, match=message):
        evaluate_tm_export(folder, load_dataset(dataset), tmp_path / "results")
    assert cloud_main(["tm-eval", str(folder), str(dataset), "--results", str(tmp_path / "results")]) == 2


def test_tm_export_makes_one_class_per_label_plus_none(small_dataset, tmp_path):
    counts = export_for_tm(load_dataset(small_dataset), tmp_path / "tm")
    assert counts == {"cat": 2, "dog": 2, "none": 1}  # train only (thresholds are tuned on valid); 'cat dog' in both
    assert (tmp_path / "tm" / "cat.zip").is_file() and len(list((tmp_path / "tm" / "dog").iterdir())) == 2
    with pytest.raises(BenchmarkError, match="already exists"):
        export_for_tm(load_dataset(small_dataset), tmp_path / "tm")
