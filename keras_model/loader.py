"""Backend-neutral input: Keras' ``PyDataset`` over decoded, cached uint8 images, for JAX or PyTorch without
TensorFlow (a GPU machine with PyTorch alone; a user who never installed TensorFlow).

The same steps as the tf.data pipeline (``data.py``) in the same order: decode once (PIL, EXIF rotation as
everywhere), the shared view (``view.py``), cache as uint8; per epoch a seeded shuffle, then per batch the same Keras
augmentation layers and MixUp, run by the backend itself (on its GPU where it has one). Batches come out as numpy:
Keras' trainer moves them to the backend's device.
"""

from __future__ import annotations

import functools
import math
import sys

import numpy as np
from tqdm.auto import tqdm

from benchmarks.data.dataset import Dataset
from benchmarks.data.images import open_rgb

from .augmentation import augmentation, mixup_layer
from .backbone import keras
from .config import TrainConfig
from .view import square_uint8


@functools.lru_cache(maxsize=4)  # train, valid and valid + test of one run; a tuning study's next trial reuses them
def square_images(paths: tuple[str, ...], size: int) -> np.ndarray:
    """(N, size, size, 3) uint8: every image decoded and viewed once."""
    images = np.empty((len(paths), size, size, 3), np.uint8)
    quiet = not sys.stderr.isatty() or len(paths) < 200
    for i, path in enumerate(tqdm(paths, desc=f"decoding {len(paths)} images", unit="img", disable=quiet)):
        images[i] = square_uint8(np.asarray(open_rgb(path)), size)
    images.setflags(write=False)  # shared between calls through the cache
    return images


class ImageBatches(keras.utils.PyDataset):
    """float32 batches of the cached images (with their targets where given): in dataset order for evaluation, or
    reshuffled each epoch and augmented for training. Each training batch draws its augmentation from its own seed
    (the run's seed, the epoch, the batch), so batches made in any order give the same run."""

    def __init__(
        self,
        images: np.ndarray,
        targets: np.ndarray | None,
        bs: int,
        config: TrainConfig | None = None,
    ):
        super().__init__()
        self.images, self.targets, self.bs = images, targets, bs
        self.augment = augmentation(config).layers if config is not None else None
        self.mixup = mixup_layer(config) if config is not None and config.mixup else None
        self.seed, self.epoch = (config.seed if config is not None else 0), -1
        self.shuffler = np.random.default_rng(self.seed) if config is not None else None
        self.order = np.arange(len(images))
        self.on_epoch_end()

    def __len__(self) -> int:
        return math.ceil(len(self.images) / self.bs)

    def __getitem__(self, index: int):
        rows = self.order[index * self.bs : (index + 1) * self.bs]
        pixels = self.images[rows].astype(np.float32)
        if self.targets is None:
            return (pixels,)
        targets = self.targets[rows]
        if self.augment is None:
            return pixels, targets
        pixels, targets = self.augmented(pixels, targets, index)
        return keras.ops.convert_to_numpy(pixels), keras.ops.convert_to_numpy(targets).astype(np.float32)

    def augmented(self, pixels: np.ndarray, targets: np.ndarray, index: int):
        """Keras' own layers, each asked for its random transformation with this batch's seed, then applying it
        (what a layer's ``call`` does with its shared seed generator, whose draws would follow the threads' order)."""
        seeds = np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(len(self.augment) + 1)
        seeds = [int(seed) % (2**31 - 1) for seed in seeds]
        for layer, seed in zip(self.augment, seeds, strict=False):
            pixels = layer.backend.convert_to_tensor(pixels)
            pixels = layer.transform_images(pixels, layer.get_random_transformation(pixels, seed=seed))
        if self.mixup is not None:
            data = {"images": pixels, "labels": self.mixup.backend.convert_to_tensor(targets)}
            change = self.mixup.get_random_transformation(data, seed=seeds[-1])
            pixels = self.mixup.transform_images(pixels, change)
            targets = self.mixup.transform_labels(data["labels"], change)
        return pixels, targets

    def on_epoch_end(self) -> None:
        if self.shuffler is not None:
            self.order = self.shuffler.permutation(len(self.images))
            self.epoch += 1


def _images(dataset: Dataset, splits, config: TrainConfig) -> np.ndarray:
    return square_images(tuple(str(p) for p in dataset.image_paths(splits)), config.img_size)


def training_batches(dataset: Dataset, config: TrainConfig) -> ImageBatches:
    """One worker: 8 augmenting threads beside the H200's training gave no more images/s (95 against 99-100 with
    one, when Keras' PyTorch affine layers still warped image by image; the one warp now runs on the batch,
    ``augmentation.torch_warp``), so the simpler path stays."""
    targets = dataset.targets("train").astype(np.float32)
    return ImageBatches(_images(dataset, "train", config), targets, config.bs, config)


def evaluation_batches(
    dataset: Dataset, splits: list[str], config: TrainConfig, with_targets: bool = True
) -> ImageBatches:
    """Unaugmented batches in dataset order (valid for monitoring; valid + test for the final scores)."""
    targets = dataset.targets(splits).astype(np.float32) if with_targets else None
    return ImageBatches(_images(dataset, splits, config), targets, config.bs)
