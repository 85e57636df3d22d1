"""What the cloud-adapter tests share: the real exports in tests/fixtures and datasets built from their images."""

import shutil
from pathlib import Path

import pandas as pd
from PIL import Image

from benchmarks.data.dataset import write_dataset

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TM = FIXTURES / "teachable_machine"
FRUIT = TM / "tflite_fruit6"
FRUIT_IMAGES = sorted((FRUIT / "sample_images").glob("*.png"))
FLOWERS = FIXTURES / "vertex_automl" / "edge_tflite_flowers5"
VISION = FIXTURES / "vision_api" / "3998-4115-output-201-to-217.json"
MADE_HERE = FIXTURES / "made_here"  # formats with no public example: built with their own converters (README there)
PHOTOS = sorted((FLOWERS / "ios_resources").glob("*.jp*g"))


def true_fruit_class(path: Path) -> str:
    """``rotten_banana_53.png`` → ``ROTTEN BANANA``."""
    return " ".join(path.stem.split("_")[:2]).upper()


def dataset_from_files(root: Path, files: list[Path], labels_of, labels: list[str]) -> Path:
    """A dataset whose valid and test splits hold ``files`` (alternating), with a token train split."""
    rows = []
    for i, path in enumerate(files):
        rel = f"images/{path.name}"
        (root / "images").mkdir(parents=True, exist_ok=True)
        shutil.copy(path, root / rel)
        rows.append((rel, tuple(labels_of(path)), "valid" if i % 2 else "test"))
    for i, label in enumerate(labels):
        rel = f"images/train_{i}.png"
        Image.new("RGB", (32, 32), (i * 20, 0, 0)).save(root / rel)
        rows.append((rel, (label,), "train"))
    write_dataset(root, pd.DataFrame(rows, columns=["image", "labels", "split"]), labels, name=root.name)
    return root
