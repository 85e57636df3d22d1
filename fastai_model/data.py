"""fastai DataLoaders from a dataset in our format: train/valid from labels.csv, test kept out of training."""

from __future__ import annotations

import pandas as pd
from fastai.vision.all import (
    ColReader,
    ColSplitter,
    DataBlock,
    ImageBlock,
    MultiCategoryBlock,
    Normalize,
    RandomResizedCrop,
    Resize,
    aug_transforms,
)

from benchmarks.data.dataset import Dataset
from benchmarks.models.backbones import Backbone
from benchmarks.training.options import MATCHED

from .config import TrainConfig


def training_frame(dataset: Dataset) -> pd.DataFrame:
    """train + valid rows only: the test split never reaches the DataBlock."""
    rows = dataset.rows(["train", "valid"])
    return pd.DataFrame(
        {
            "image": [str(dataset.root / rel) for rel in rows["image"]],
            "labels": [" ".join(names) for names in rows["labels"]],
            "is_valid": (rows["split"] == "valid").to_numpy(),
        }
    )


def label_list(row):  # no return annotation: fastai casts results to it, and list[str] breaks that
    """Space-separated labels; an empty cell is an image with none of the labels."""
    return row["labels"].split()


def make_dataloaders(dataset: Dataset, backbone: Backbone, config: TrainConfig, size: int | None = None):
    size = size or config.img_size
    block = DataBlock(
        blocks=(ImageBlock, MultiCategoryBlock(vocab=dataset.labels)),
        get_x=ColReader("image"),
        get_y=label_list,
        splitter=ColSplitter("is_valid"),
        item_tfms=item_transforms(config, size),
        batch_tfms=[*augmentations(config), Normalize.from_stats(list(backbone.mean), list(backbone.std))],
    )
    workers = config.num_workers
    return block.dataloaders(training_frame(dataset), bs=batch_size(dataset, config), num_workers=workers)


def item_transforms(config: TrainConfig, size: int) -> list:
    """``Resize`` everywhere, or RandomResizedCrop on training images only (``--item-tfm rrc``). fastai's own
    RandomResizedCrop also crops valid images, to the centre 1/1.14 of the frame (``val_xtra``), which the served
    model never does: valid scores, keep-best, the thresholds and test would then be a different model's
    (measured on StampScenes-450: scores up to 0.35 apart). Valid and test get ``Resize`` as served images do."""
    if config.item_tfm != "rrc":
        return [Resize(size)]
    crop, resize = RandomResizedCrop(size, min_scale=0.5), Resize(size)
    crop.split_idx, resize.split_idx = 0, 1  # fastai's split_idx: 0 the training set only, 1 valid (and test_dl)
    return [crop, resize]


def batch_size(dataset: Dataset, config: TrainConfig) -> int:
    """--bs, or the train split's size where that is smaller: fastai drops a train epoch's incomplete last batch, so
    a batch larger than the split would train on nothing (a fold of a small dataset can be that small)."""
    train_images = len(dataset.rows("train"))
    if train_images >= config.bs:
        return config.bs
    print(f"--bs {config.bs} is more than the {train_images} training images: batches of {train_images}")
    return max(1, train_images)


def augmentations(config: TrainConfig) -> list:
    """fastai's ``aug_transforms``: flips, rotation, zoom and lighting in the ranges both frameworks use, plus a little
    warp, each on 75 % of images; the matched recipe drops the warp and transforms every image, as Keras' random
    layers do."""
    matched = config.recipe == "matched"
    return aug_transforms(
        do_flip=True,
        max_rotate=MATCHED.rotate_degrees,
        max_zoom=1 + MATCHED.zoom,
        max_lighting=MATCHED.lighting,
        max_warp=0.0 if matched else 0.1,
        p_affine=1.0 if matched else 0.75,
        p_lighting=1.0 if matched else 0.75,
    )
