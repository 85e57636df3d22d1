"""Exploratory analysis and quality checks of a dataset, each check with a verdict and a remedy."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from .dataset import SPLITS, Dataset
from .image_hashes import duplicate_groups, file_sha256, near_duplicate_pairs, perceptual_signature

TINY_SIDE = 32
MIN_TRAIN_POSITIVES, MIN_EVAL_POSITIVES = 10, 5
IMBALANCE_RATIO = 10.0
EXIF_ORIENTATION = 0x0112


@dataclass
class ImageFacts:
    """What one pass over an image file tells: readability, geometry, mode, hashes and tone."""

    image: str
    bytes: int
    readable: bool
    error: str = ""
    width: int = 0
    height: int = 0
    mode: str = ""
    exif_rotated: bool = False
    sha256: str = ""
    phash: int = 0
    thumb: bytes = b""
    brightness: float = 0.0
    contrast: float = 0.0


def inspect_image(job: tuple[Path, str]) -> ImageFacts:
    root, rel = job
    path = root / rel
    size = path.stat().st_size
    facts = ImageFacts(rel, size, readable=False)
    if size == 0:
        facts.error = "zero-byte file"
        return facts
    try:
        with Image.open(path) as img:
            facts.width, facts.height, facts.mode = img.width, img.height, img.mode
            facts.exif_rotated = img.getexif().get(EXIF_ORIENTATION, 1) not in (1, None)
            img.load()
            gray = np.asarray(img.convert("L"), dtype=np.float32)
        facts.phash, facts.thumb = perceptual_signature(path)
    except Exception as exc:  # any decoder failure means the file is unusable
        facts.error = f"{exc.__class__.__name__}: {exc}"
        return facts
    facts.readable = True
    facts.sha256 = file_sha256(path)
    facts.brightness, facts.contrast = round(float(gray.mean()), 2), round(float(gray.std()), 2)
    return facts


def scan_images(dataset: Dataset, workers: int = 2, processes: bool = False) -> pd.DataFrame:
    """One row of facts per image. Threads by default: a forked process pool inside a long-lived server (the
    dashboard) can outlive its shutdown and hang every later request; the EDA CLI asks for processes."""
    jobs = [(dataset.root, rel) for rel in dataset.items["image"]]
    progress = dict(total=len(jobs), desc="inspecting images", unit="img", disable=not processes)
    if processes:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            facts = list(tqdm(pool.imap(inspect_image, jobs, chunksize=32), **progress))
    else:
        with ThreadPoolExecutor(workers) as pool:
            facts = list(tqdm(pool.map(inspect_image, jobs), **progress))
    table = pd.DataFrame([asdict(f) for f in facts])
    table["split"] = dataset.items["split"].to_numpy()
    table["phash"] = table["phash"].astype(object)
    return table


def statistics(dataset: Dataset, facts: pd.DataFrame) -> dict:
    targets = dataset.targets()
    per_image = targets.sum(axis=1)
    readable = facts[facts["readable"]]
    return {
        "images": {s: int((dataset.items["split"] == s).sum()) for s in SPLITS},
        "label_frequency": {s: dict(zip(dataset.labels, dataset.targets(s).sum(axis=0).tolist())) for s in SPLITS},
        "cooccurrence": {"labels": dataset.labels, "matrix": (targets.T.astype(int) @ targets.astype(int)).tolist()},
        "labels_per_image": {str(k): int(v) for k, v in sorted(Counter(per_image.tolist()).items())},
        "mean_labels_per_image": round(float(per_image.mean()), 3),
        "image_size": {
            "width": _describe(readable["width"]),
            "height": _describe(readable["height"]),
            "aspect_ratio": _describe(readable["width"] / readable["height"].clip(lower=1)),
            "distinct_sizes": int(readable.groupby(["width", "height"]).ngroups),
        },
        "modes": dict(Counter(readable["mode"])),
        "brightness": _describe(readable["brightness"]),
        "contrast": _describe(readable["contrast"]),
    }


def _describe(values: pd.Series) -> dict:
    if len(values) == 0:
        return {}
    return {k: round(float(v), 3) for k, v in values.describe(percentiles=[0.05, 0.5, 0.95]).drop("count").items()}


def quality_checks(dataset: Dataset, facts: pd.DataFrame) -> list[dict]:
    checks = []

    def check(name: str, verdict: str, finding: str, remedy: str = "", examples: list | None = None) -> None:
        checks.append(
            {"check": name, "verdict": verdict, "finding": finding, "remedy": remedy, "examples": (examples or [])[:10]}
        )

    broken = facts[~facts["readable"]]
    check(
        "unreadable files",
        "fail" if len(broken) else "ok",
        f"{len(broken)} unreadable, corrupt or zero-byte file(s)",
        "--drop-corrupt writes a copy without them" if len(broken) else "",
        [f"{r.image}: {r.error}" for r in broken.itertuples()],
    )
    ok = facts[facts["readable"]]
    tiny = ok[(ok["width"] < TINY_SIDE) | (ok["height"] < TINY_SIDE)]
    check(
        "tiny images",
        "warn" if len(tiny) else "ok",
        f"{len(tiny)} image(s) under {TINY_SIDE} px on a side",
        "upscaling adds no detail: replace them or accept they carry little signal" if len(tiny) else "",
        list(tiny["image"]),
    )
    odd = ok[~ok["mode"].isin(["RGB"])]
    check(
        "colour modes",
        "info" if len(odd) else "ok",
        f"modes: {dict(Counter(ok['mode']))}",
        "grayscale, CMYK, alpha and 16-bit images are converted to RGB at load time (alpha on white)"
        if len(odd)
        else "",
        list(odd["image"]),
    )
    rotated = ok[ok["exif_rotated"]]
    check(
        "EXIF rotation",
        "info" if len(rotated) else "ok",
        f"{len(rotated)} image(s) carry an EXIF rotation",
        "applied at load time (ImageOps.exif_transpose); models see them upright" if len(rotated) else "",
        list(rotated["image"]),
    )

    exact = ok[ok.duplicated("sha256", keep=False)]
    check(
        "exact duplicates",
        "warn" if len(exact) else "ok",
        f"{len(exact)} image(s) in {exact['sha256'].nunique()} group(s) of identical files",
        "--dedupe keeps one image per group" if len(exact) else "",
        list(exact["image"]),
    )
    pairs = [
        (i, j, d)
        for i, j, d in near_duplicate_pairs(list(ok["phash"]), list(ok["thumb"]))
        if ok["sha256"].iloc[i] != ok["sha256"].iloc[j]
    ]
    check(
        "near duplicates",
        "warn" if pairs else "ok",
        f"{len(pairs)} pair(s) of near-identical images (perceptual hash within 6 bits and matching colours)",
        "--dedupe keeps one image per group" if pairs else "",
        [f"{ok['image'].iloc[i]} ~ {ok['image'].iloc[j]} ({d} bits)" for i, j, d in pairs],
    )
    groups = duplicate_groups(list(ok["sha256"]), list(ok["phash"]), list(ok["thumb"]))
    split_sets = pd.Series(ok["split"].to_numpy()).groupby(groups).agg(lambda s: sorted(set(s)))
    leaking = [g for g, splits in split_sets.items() if len(splits) > 1]
    leak_examples = [" / ".join(ok["image"].to_numpy()[groups == g]) for g in leaking]
    check(
        "duplicates across splits (leakage)",
        "fail" if leaking else "ok",
        f"{len(leaking)} duplicate group(s) span more than one split",
        "--dedupe (drop copies) or --resplit (re-split keeping duplicates together)" if leaking else "",
        leak_examples,
    )

    few = []
    for split, minimum in (("train", MIN_TRAIN_POSITIVES), ("valid", MIN_EVAL_POSITIVES), ("test", MIN_EVAL_POSITIVES)):
        counts = dataset.targets(split).sum(axis=0)
        few += [f"{label}: {int(c)} in {split}" for label, c in zip(dataset.labels, counts) if c < minimum]
    check(
        "labels with too few examples",
        "warn" if few else "ok",
        f"{len(few)} label/split pair(s) below {MIN_TRAIN_POSITIVES} train or {MIN_EVAL_POSITIVES} valid/test "
        "positives",
        "collect more images for them, merge rare labels, or --resplit to balance the splits" if few else "",
        few,
    )
    train_counts = dataset.targets("train").sum(axis=0)
    ratio = float(train_counts.max() / max(train_counts.min(), 1))
    check(
        "label imbalance",
        "warn" if ratio > IMBALANCE_RATIO else "ok",
        f"most/least frequent label in train: {ratio:.1f}× ({dataset.labels[int(train_counts.argmax())]} vs "
        f"{dataset.labels[int(train_counts.argmin())]})",
        "per-label thresholds (tuned on valid) and macro metrics keep rare labels visible; consider class weights or "
        "more data"
        if ratio > IMBALANCE_RATIO
        else "",
    )
    return checks
