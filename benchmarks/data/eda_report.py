"""Writes DATASET/eda/: report.json (statistics and quality verdicts), report.html and one PNG per plot."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import plotly.express as px
import plotly.graph_objects as go
import plotly.io as pio
from PIL import Image, ImageDraw

from benchmarks.atomic import atomic_write, atomic_write_json, atomic_write_text
from benchmarks.errors import DatasetError

from .dataset import SPLITS, Dataset
from .eda import quality_checks, scan_images, statistics
from .images import open_rgb

SAMPLES_PER_LABEL = 8
THUMB = 96


def run_eda(dataset: Dataset, out_dir: Path | None = None) -> dict:
    if not dataset.labels:
        raise DatasetError(f"{dataset.root}: no labels in labels.csv or dataset.json; label the images, then run EDA")
    out_dir = out_dir or dataset.root / "eda"
    out_dir.mkdir(parents=True, exist_ok=True)
    facts = scan_images(dataset, processes=True)
    stats = statistics(dataset, facts)
    checks = quality_checks(dataset, facts)
    figures = make_figures(dataset, stats, facts)
    png_note = write_figures(figures, out_dir)
    sample_grid(dataset, facts, out_dir / "samples_per_label.png")
    report = {
        "dataset": {
            "name": dataset.name,
            "path": str(dataset.root),
            "fingerprint": dataset.fingerprint,
            "labels": dataset.labels,
        },
        "statistics": stats,
        "checks": checks,
        "plots": [f"{name}.png" for name in figures] + ["samples_per_label.png", "report.html"],
        "png_export": png_note,
    }
    atomic_write_json(out_dir / "report.json", report)
    return report


def make_figures(dataset: Dataset, stats: dict, facts) -> dict[str, go.Figure]:
    return {**label_figures(dataset, stats), **image_figures(facts)}


def image_figures(facts) -> dict[str, go.Figure]:
    """Figures from the per-image facts of ``scan_images`` (also drawn by the dashboard)."""
    readable = facts[facts["readable"]]
    return {
        "image_sizes": px.scatter(
            readable, x="width", y="height", color="split", hover_name="image", title="Image sizes (px)"
        ),
        "brightness_contrast": px.scatter(
            readable,
            x="brightness",
            y="contrast",
            color="split",
            hover_name="image",
            opacity=0.6,
            title="Brightness vs contrast (grayscale mean and std)",
        ),
    }


def label_figures(dataset: Dataset, stats: dict) -> dict[str, go.Figure]:
    """Figures from the label statistics alone (also drawn by the dashboard from report.json)."""
    frequency = [
        {"label": label, "split": split, "images": count}
        for split in SPLITS
        for label, count in stats["label_frequency"][split].items()
    ]
    per_image = stats["labels_per_image"]
    return {
        "label_frequency": px.bar(
            frequency, x="label", y="images", color="split", barmode="group", title="Label frequency per split"
        ),
        "cooccurrence": px.imshow(
            np.asarray(stats["cooccurrence"]["matrix"]),
            x=dataset.labels,
            y=dataset.labels,
            text_auto=True,
            color_continuous_scale="Blues",
            title="Label co-occurrence (images with both labels; diagonal = label count)",
        ),
        "labels_per_image": px.bar(
            x=list(per_image),
            y=list(per_image.values()),
            labels={"x": "labels on the image", "y": "images"},
            title="Labels per image",
        ),
    }


def write_figures(figures: dict[str, go.Figure], out_dir: Path) -> str:
    """One self-contained HTML page with every plot (plotly.js inline once), plus a PNG per plot."""
    parts = [
        f"<h2>{name.replace('_', ' ')}</h2>" + pio.to_html(fig, full_html=False, include_plotlyjs=(i == 0))
        for i, (name, fig) in enumerate(figures.items())
    ]
    parts.append('<h2>samples per label</h2><img src="samples_per_label.png" style="max-width:100%">')
    atomic_write_text(
        out_dir / "report.html",
        "<!doctype html><meta charset='utf-8'><title>EDA</title><body>" + "\n".join(parts) + "</body>",
    )
    try:
        for name, fig in figures.items():
            atomic_write(
                out_dir / f"{name}.png",
                lambda tmp, fig=fig: fig.write_image(str(tmp), format="png", width=900, height=600),
            )
    except Exception as exc:  # PNG export needs Chromium; the HTML report is complete without it
        warnings.warn(f"PNG export skipped ({exc.__class__.__name__}); install chromium for PNG plots", stacklevel=2)
        return f"skipped: {exc.__class__.__name__}: {str(exc)[:200]}"
    return "ok"


def sample_grid(dataset: Dataset, facts, path: Path, seed: int = 0) -> None:
    """A row of training thumbnails per label, for eyeballing what each label looks like."""
    rng = np.random.default_rng(seed)
    readable = set(facts.loc[facts["readable"], "image"])
    train = dataset.rows("train")
    grid = Image.new("RGB", (THUMB * SAMPLES_PER_LABEL + 120, THUMB * len(dataset.labels)), "white")
    draw = ImageDraw.Draw(grid)
    for row, label in enumerate(dataset.labels):
        draw.text((4, row * THUMB + THUMB // 2), label, fill="black")
        members = [img for img, names in zip(train["image"], train["labels"]) if label in names and img in readable]
        for col, rel in enumerate(rng.permutation(members)[:SAMPLES_PER_LABEL]):
            thumb = open_rgb(dataset.root / rel)
            thumb.thumbnail((THUMB, THUMB))
            grid.paste(thumb, (120 + col * THUMB, row * THUMB))
    atomic_write(path, lambda tmp: grid.save(tmp, format="PNG"))
