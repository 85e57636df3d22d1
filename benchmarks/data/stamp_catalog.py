"""Which Tux Paint stamps become which StampScenes label, and how stamps are split between train/valid/test."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.errors import DatasetError

DEFAULT_STAMPS_DIR = Path("/usr/share/tuxpaint/stamps")

# Folder prefix -> label; the longest matching prefix wins, and None excludes the folder.
LABEL_FOLDERS: dict[str, str | None] = {
    "animals/mammals": "mammal",
    "animals/marsupials": "mammal",
    "animals/mammals/aquatic": "sea_life",
    "animals/mammals/bears/toys": None,  # a teddy bear is not a mammal
    "animals/fish": "sea_life",
    "animals/shellfish": "sea_life",
    "animals/birds": "bird",
    "animals/insects": "insect",
    "food/fruit": "fruit",
    "food/vegetables": "vegetable",
    "plants": "plant",
    "plants/mushrooms": None,  # fungi, not plants
    "vehicles": "vehicle",
    "military/vehicles": "vehicle",
    "household": "household",
    "hobbies/music": "music_sport",
    "sports": "music_sport",
    "clothes": "clothing",
}
# Single stamps whose folder would give them the wrong label.
LABEL_OVERRIDES: dict[str, str | None] = {
    "plants/eggplant": "vegetable",
    "plants/lettuce_bolted": "vegetable",
    "household/rubberduck": None,
    "clothes/button": None,
    "clothes/clothespin_new": None,
    "clothes/clothespin_old": None,
    "vehicles/7spoke256": None,
    "vehicles/wheel_tractor": None,
}
# In a label's folder but not of that label (Tux Paint files snails, slugs, woodlice and spiders under insects):
# kept as unlabelled distractors, so they are hard negatives instead of label noise.
LOOKALIKES = (
    "animals/insects/Brown_slug",
    "animals/insects/Woodlouse",
    "animals/insects/cartoon/snail",
    "animals/insects/cartoon/snail2",
    "animals/insects/cartoon/spider_computer",
    "animals/insects/cartoon/spider_fly",
    "animals/insects/cartoon/spider_football",
)
# Unlabelled clutter: objects that belong to none of the labels.
DISTRACTOR_FOLDERS = (
    "town/roadsigns",
    "town/flags",
    "symbols/shapes",
    "symbols/chess",
    "symbols/math",
    "symbols/money",
    "space",
    "medical",
    "naturalforces",
    "hobbies/binoculars",
    "hobbies/camera_35mm",
)
SPLIT_PATTERN = ("train", "valid", "train", "test", "train")  # 60 / 20 / 20 of each label's stamps
MIN_STAMPS_PER_LABEL = 3
MAX_STAMP_SIDE = 320
FLAT_CARTOON_SHARE = 0.25  # share of flat-colour pixels above which a stamp counts as a drawing


@dataclass
class Stamp:
    key: str  # path under the stamps folder without ".png", e.g. "animals/birds/duck"
    label: str | None  # None for a distractor
    style: str  # "photo" or "cartoon"
    image: Image.Image  # RGBA, cropped to its alpha bounding box
    split: str = ""


def label_for(key: str) -> str | None:
    if key in LOOKALIKES:
        return None
    if key in LABEL_OVERRIDES:
        return LABEL_OVERRIDES[key]
    best = None
    for prefix in LABEL_FOLDERS:
        if (key + "/").startswith(prefix + "/") and (best is None or len(prefix) > len(best)):
            best = prefix
    return LABEL_FOLDERS[best] if best else None


def is_distractor(key: str) -> bool:
    return key in LOOKALIKES or any(
        (key + "/").startswith(prefix + "/") or key == prefix for prefix in DISTRACTOR_FOLDERS
    )


def stamp_style(key: str, image: Image.Image) -> str:
    """Cartoon when the folder says so or large areas are flat colour (drawings); photo otherwise (a heuristic)."""
    if "/cartoon" in "/" + key:
        return "cartoon"
    pixels = np.asarray(image).astype(np.int32)
    opaque = pixels[:-1, :-1, 3] > 200
    rgb = pixels[..., :3]
    flat = (np.abs(rgb[:-1, :-1] - rgb[1:, :-1]).sum(-1) <= 3) & (np.abs(rgb[:-1, :-1] - rgb[:-1, 1:]).sum(-1) <= 3)
    return "cartoon" if (flat & opaque).sum() > FLAT_CARTOON_SHARE * max(opaque.sum(), 1) else "photo"


def load_stamp(path: Path) -> Image.Image:
    with Image.open(path) as img:
        img = img.convert("RGBA")
    box = img.getchannel("A").point(lambda a: 255 if a > 32 else 0).getbbox()
    if box:
        img = img.crop(box)
    img.thumbnail((MAX_STAMP_SIDE, MAX_STAMP_SIDE), Image.Resampling.LANCZOS)
    return img


def catalog(stamps_dir: Path) -> list[Stamp]:
    """Every usable PNG stamp with its label (or as a distractor) and its style."""
    if not stamps_dir.is_dir():
        raise DatasetError(
            f"{stamps_dir}: Tux Paint stamps not found; install them with `sudo apt-get install "
            "tuxpaint-stamps-default` "
            "or point --stamps at a folder of stamp PNGs"
        )
    stamps = []
    for path in sorted(stamps_dir.rglob("*.png")):
        key = path.relative_to(stamps_dir).with_suffix("").as_posix()
        label = label_for(key)
        if label is None and not is_distractor(key):
            continue
        try:
            image = load_stamp(path)
        except Exception:  # a broken stamp is skipped, not fatal
            continue
        if min(image.size) < 8:
            continue
        stamps.append(Stamp(key, label, stamp_style(key, image), image))
    return stamps


def assign_stamp_splits(stamps: list[Stamp], seed: int) -> None:
    """Instance-disjoint splits: each stamp goes to one split, spread per label and style (60/20/20)."""
    rng = np.random.default_rng(seed)
    labels = sorted({s.label for s in stamps if s.label})
    for label in labels:
        members = [s for s in stamps if s.label == label]
        if len(members) < MIN_STAMPS_PER_LABEL:
            raise DatasetError(
                f"label '{label}' has only {len(members)} stamps; it needs at least {MIN_STAMPS_PER_LABEL} (one per "
                "split)"
            )
        position = int(rng.integers(len(SPLIT_PATTERN)))
        for style in ("cartoon", "photo"):  # each style continues the cycle, so both reach every split overall
            group = [s for s in members if s.style == style]
            for index in rng.permutation(len(group)):
                group[index].split = SPLIT_PATTERN[position % len(SPLIT_PATTERN)]
                position += 1
    distractors = [s for s in stamps if s.label is None]
    for offset, index in enumerate(rng.permutation(len(distractors))):
        distractors[index].split = SPLIT_PATTERN[offset % len(SPLIT_PATTERN)]
    ensure_every_split_per_label(stamps)


def ensure_every_split_per_label(stamps: list[Stamp]) -> None:
    """Small labels can miss a split in the cycle: take a training stamp for each split that is missing."""
    for label in sorted({s.label for s in stamps if s.label}):
        members = [s for s in stamps if s.label == label]
        for split in ("valid", "test", "train"):
            if not any(s.split == split for s in members):
                donor = max(("train", "valid", "test"), key=lambda sp: sum(s.split == sp for s in members))
                next(s for s in members if s.split == donor).split = split
