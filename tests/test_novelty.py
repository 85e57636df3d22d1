"""The Try-an-image page's out-of-distribution hint: nearest-training-image distance in frozen features."""

import numpy as np
import pytest
from PIL import Image

from benchmarks.data.dataset import load_dataset
from benchmarks.data.images import open_rgb
from benchmarks.models.backbones import get_backbone
from benchmarks.models.features import backbone_features
from benchmarks.models.novelty import NoveltyCheck

SIZE = 64


def test_training_images_are_familiar_and_noise_is_not(tiny_scenes, tmp_path, monkeypatch):
    monkeypatch.setenv("IMGBENCH_CACHE", str(tmp_path / "cache"))  # other tests may have cached these features
    dataset = load_dataset(tiny_scenes)
    with pytest.raises(FileNotFoundError):  # no cached features: no hint, and nothing computed on the spot
        NoveltyCheck(dataset, "lite0", SIZE)
    backbone_features(dataset, get_backbone("lite0"), SIZE)  # what the linear probe baseline caches
    check = NoveltyCheck(dataset, "lite0", SIZE)

    seen = check.check(open_rgb(dataset.image_paths("train")[0]))
    assert seen.distance < 1e-3 and not seen.unlike_training and "like the training images" in seen.message()

    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (SIZE * 3, SIZE * 3, 3), dtype=np.uint8))
    novel = check.check(noise)
    assert novel.unlike_training and novel.distance > check.cut
    assert novel.message().startswith("this image looks unlike the training images")
