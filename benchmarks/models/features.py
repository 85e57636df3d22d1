"""Frozen-backbone features, cached on disk by dataset fingerprint + backbone + image size."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from benchmarks.atomic import atomic_write
from benchmarks.data.dataset import Dataset
from benchmarks.data.images import open_rgb
from benchmarks.data.paths import cache_dir
from benchmarks.errors import BenchmarkError

from .backbones import Backbone, backbone_input
from .compiled import compiled_or_native, export_torch, probe_images

BATCH_SIZE = 32


def torch_loadable() -> bool:
    """Whether PyTorch can still be loaded in this process: not after TensorFlow, unless torchvision came first
    (torch_first). Where not, PyTorch work (porting weights, computing features) runs in a child process."""
    return "torchvision" in sys.modules or "tensorflow" not in sys.modules


FEATURE_RUNTIMES = ("openvino", "cuda", "native")  # which network computed a cache entry: part of its name


def cached_features_path(dataset: Dataset, backbone: Backbone, img_size: int, runtime: str) -> Path:
    """Where a dataset's pooled features live: keyed by its fingerprint, the backbone, the image size and the runtime
    that computed them (within 1e-4 of each other, but a seed must give the same run: the bits matter)."""
    name = f"{dataset.fingerprint.replace(':', '-')}-{backbone.name}-{img_size}-{runtime}.npz"
    return cache_dir() / "features" / name


def find_cached_features(dataset: Dataset, backbone: Backbone, img_size: int) -> Path | None:
    """The cache entry for these features, whichever runtime computed it (OpenVINO's first); None if none has."""
    paths = [cached_features_path(dataset, backbone, img_size, runtime) for runtime in FEATURE_RUNTIMES]
    return next((path for path in paths if path.is_file()), None)


def backbone_features(dataset: Dataset, backbone: Backbone, img_size: int | None = None) -> tuple[np.ndarray, float]:
    """Pooled features for every image in dataset order, and the seconds per image it took to compute them.

    Where PyTorch cannot be loaded any more (the Keras trainer), a missing cache entry is computed by a child
    process and then read here."""
    img_size = img_size or backbone.input_size
    path = find_cached_features(dataset, backbone, img_size)
    if path is None and not torch_loadable():
        command = [sys.executable, "-m", "benchmarks.models.features", str(dataset.root), backbone.name, str(img_size)]
        if subprocess.run(command).returncode != 0:
            raise BenchmarkError(f"computing {backbone.name} features of {dataset.root} failed (the command above)")
        path = find_cached_features(dataset, backbone, img_size)
    if path is not None:
        cached = np.load(path)
        return cached["features"], float(cached["seconds_per_image"])
    features, seconds_per_image, runtime = extract(dataset.image_paths(), backbone, img_size)
    atomic_write(
        cached_features_path(dataset, backbone, img_size, runtime),
        lambda tmp: np.savez(open(tmp, "wb"), features=features, seconds_per_image=seconds_per_image),
    )
    return features, seconds_per_image


def extract(paths: list[Path], backbone: Backbone, img_size: int) -> tuple[np.ndarray, float, str]:
    """Features of ``paths``, seconds per image, and the runtime that computed them."""
    network = FeatureNetwork(backbone, img_size)
    chunks = []
    start = time.perf_counter()
    with tqdm(total=len(paths), desc=f"{backbone.name} features ({network.runtime})", unit="img") as bar:
        for i in range(0, len(paths), BATCH_SIZE):
            images = [open_rgb(p) for p in paths[i : i + BATCH_SIZE]]
            chunks.append(network.features(images))
            bar.update(len(images))
    seconds = time.perf_counter() - start
    return np.concatenate(chunks).astype(np.float32), seconds / max(len(paths), 1), network.runtime


class FeatureNetwork:
    """The frozen backbone as decoded images → pooled features: what the probe trains on and serves with, LP-FT's
    head is fitted on, and the cache holds. Run by PyTorch on the GPU where there is one (``cuda``); else by its
    OpenVINO export (made once per backbone and size under the cache, accepted within ``PARITY_TOLERANCE`` of
    PyTorch's features on fixed images), by PyTorch on the CPU (``native``) where that export cannot be made or does
    not match (one line says so)."""

    def __init__(self, backbone: Backbone, img_size: int):
        import torch

        threads = os.environ.get("OMP_NUM_THREADS", "")  # a grid cell's share of the machine, when one is set
        torch.set_num_threads(int(threads) if threads.isdigit() and int(threads) > 0 else os.cpu_count() or 1)
        self.backbone, self.img_size = backbone, img_size
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        model = backbone.create_torch_model(num_classes=0).eval()
        self.model = model.to(self.device, memory_format=torch.channels_last)
        self.network, self.runtime = (self.native, "cuda") if self.device == "cuda" else self._compiled()

    def features(self, images: list) -> np.ndarray:
        return self.network(self.network_input(images))

    def network_input(self, images: list) -> np.ndarray:
        return backbone_input(images, self.backbone, self.img_size)

    def native(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            pixels = torch.from_numpy(batch).to(self.device).contiguous(memory_format=torch.channels_last)
            return self.model(pixels).cpu().numpy()

    def _compiled(self):
        example = self.network_input(probe_images())
        return compiled_or_native(
            cache_dir() / "networks" / f"{self.backbone.name}-{self.img_size}-features-openvino",
            lambda xml_path: export_torch(self.model, xml_path, example[:1]),
            self.native,
            example,
            what=f"{self.backbone.name} features at {self.img_size} px",
        )


if __name__ == "__main__":  # python -m benchmarks.models.features DATASET BACKBONE IMG_SIZE: fill the cache
    from benchmarks.data.dataset import load_dataset

    from .backbones import get_backbone

    backbone_features(load_dataset(Path(sys.argv[1])), get_backbone(sys.argv[2]), int(sys.argv[3]))
