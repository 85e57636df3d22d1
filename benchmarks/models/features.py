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
from benchmarks.errors import BenchmarkError

from .backbones import Backbone, normalise, prepare_image

BATCH_SIZE = 32


def cache_dir() -> Path:
    return Path(os.environ.get("IMGBENCH_CACHE", Path.home() / ".cache" / "imgbench"))


def torch_loadable() -> bool:
    """Whether PyTorch can still be loaded in this process: not after TensorFlow, unless torchvision came first
    (torch_first). Where not, PyTorch work (porting weights, computing features) runs in a child process."""
    return "torchvision" in sys.modules or "tensorflow" not in sys.modules


def cached_features_path(dataset: Dataset, backbone: Backbone, img_size: int) -> Path:
    """Where a dataset's pooled features live: keyed by its fingerprint, the backbone and the image size."""
    return cache_dir() / "features" / f"{dataset.fingerprint.replace(':', '-')}-{backbone.name}-{img_size}.npz"


def backbone_features(dataset: Dataset, backbone: Backbone, img_size: int | None = None) -> tuple[np.ndarray, float]:
    """Pooled features for every image in dataset order, and the seconds per image it took to compute them.

    Where PyTorch cannot be loaded any more (the Keras trainer), a missing cache entry is computed by a child
    process and then read here."""
    img_size = img_size or backbone.input_size
    path = cached_features_path(dataset, backbone, img_size)
    if not path.is_file() and not torch_loadable():
        command = [sys.executable, "-m", "benchmarks.models.features", str(dataset.root), backbone.name, str(img_size)]
        if subprocess.run(command).returncode != 0:
            raise BenchmarkError(f"computing {backbone.name} features of {dataset.root} failed (the command above)")
    if path.is_file():
        cached = np.load(path)
        return cached["features"], float(cached["seconds_per_image"])
    features, seconds_per_image = extract(dataset.image_paths(), backbone, img_size)
    atomic_write(path, lambda tmp: np.savez(open(tmp, "wb"), features=features, seconds_per_image=seconds_per_image))
    return features, seconds_per_image


def extract(paths: list[Path], backbone: Backbone, img_size: int) -> tuple[np.ndarray, float]:
    import torch

    threads = os.environ.get("OMP_NUM_THREADS", "")  # a grid cell's share of the machine, when one is set
    torch.set_num_threads(int(threads) if threads.isdigit() and int(threads) > 0 else os.cpu_count() or 1)
    model = backbone.create_torch_model(num_classes=0).to(memory_format=torch.channels_last)  # ~2x faster on CPU
    chunks = []
    start = time.perf_counter()
    with tqdm(total=len(paths), desc=f"{backbone.name} features", unit="img") as bar:
        for i in range(0, len(paths), BATCH_SIZE):
            images = [open_rgb(p) for p in paths[i : i + BATCH_SIZE]]
            chunks.append(pooled_features(model, backbone, images, img_size))
            bar.update(len(images))
    seconds = time.perf_counter() - start
    return np.concatenate(chunks).astype(np.float32), seconds / max(len(paths), 1)


def pooled_features(model, backbone: Backbone, images: list, img_size: int) -> np.ndarray:
    """The frozen backbone's pooled features for decoded images: the probe's training and its serving share this."""
    import torch

    batch = np.stack([np.asarray(prepare_image(image.convert("RGB"), img_size)) for image in images])
    inputs = torch.from_numpy(normalise(batch, backbone)).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        return model(inputs).numpy()


if __name__ == "__main__":  # python -m benchmarks.models.features DATASET BACKBONE IMG_SIZE: fill the cache
    from benchmarks.data.dataset import load_dataset

    from .backbones import get_backbone

    backbone_features(load_dataset(Path(sys.argv[1])), get_backbone(sys.argv[2]), int(sys.argv[3]))
