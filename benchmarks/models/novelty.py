"""Is an image like the training images? A hint for the Try-an-image page, where any photo can be uploaded.

Every model gives scores for any picture, and a daisy gets confident stamp labels. Here an image's frozen
backbone features (the ones the linear probe caches) are compared with the training images': the cosine distance
to its nearest training image, against the same distance for the valid images. Beyond what ``PERCENTILE`` % of
valid images show, the image is called unlike the training data. Uses only a feature cache that is already there
(the linear probe fills it), so a server never computes a whole dataset's features on a click.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from benchmarks.data.dataset import Dataset

from .backbones import get_backbone
from .features import FeatureNetwork, find_cached_features

PERCENTILE = 99.0


@dataclass(frozen=True)
class Novelty:
    distance: float  # cosine distance to the nearest training image
    cut: float  # the PERCENTILE-th percentile of the valid images' nearest-training distances
    unlike_training: bool

    def message(self) -> str:
        if not self.unlike_training:
            return f"like the training images (nearest-neighbour distance {self.distance:.2f} ≤ {self.cut:.2f})"
        return (
            f"this image looks unlike the training images (nearest-neighbour distance {self.distance:.2f}, above "
            f"what {PERCENTILE:g}% of valid images show: {self.cut:.2f}); the scores below may mean little"
        )


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


class NoveltyCheck:
    """Built once per dataset from its cached features; ``check`` then costs one backbone forward pass."""

    def __init__(self, dataset: Dataset, backbone_name: str = "lite0", img_size: int = 224):
        path = find_cached_features(dataset, get_backbone(backbone_name), img_size)
        if path is None:
            raise FileNotFoundError(f"no cached {backbone_name} features of {dataset.root} at {img_size} px")
        features = np.load(path)["features"].astype(np.float32)
        splits = dataset.items["split"].to_numpy()
        self.train = _unit(features[splits == "train"])
        valid_distances = 1.0 - (_unit(features[splits == "valid"]) @ self.train.T).max(axis=1)
        self.cut = float(np.percentile(valid_distances, PERCENTILE))
        self.backbone, self.img_size = get_backbone(backbone_name), img_size
        self.network = FeatureNetwork(self.backbone, img_size)  # the network that made the cached features

    def check(self, image: Image.Image) -> Novelty:
        feature = _unit(self.network.features([image]))
        distance = float(1.0 - (feature @ self.train.T).max())
        return Novelty(distance, self.cut, distance > self.cut)
