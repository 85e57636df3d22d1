"""The one path policy for every path read from a file (labels.csv, COCO, VOC, fastai CSV, model manifests, zips):
it is taken relative to its root and must stay inside it, links included, or it is refused with one line."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from benchmarks.errors import BenchmarkError


def inside(root: Path, name: str, where: str, error: type[BenchmarkError] = BenchmarkError) -> Path:
    """``root / name`` resolved; refused when ``name`` is absolute or it (or a link on the way) leaves ``root``."""
    text = str(name).strip().replace("\\", "/")
    if not text:
        raise error(f"{where}: empty file name")
    if PurePosixPath(text).is_absolute() or (len(text) > 1 and text[1] == ":"):
        raise error(f"{where}: '{name}' is an absolute path; paths in this file must be relative to {root}")
    path = (Path(root) / text).resolve()
    base = Path(root).resolve()
    if path != base and base not in path.parents:
        raise error(f"{where}: '{name}' leads outside {root}; paths in this file must stay inside it")
    return path


def relative_target(name: str, where: str, error: type[BenchmarkError] = BenchmarkError) -> str:
    """A name from a file made safe to write under a destination folder: relative, no '..', forward slashes."""
    parts = [p for p in str(name).strip().replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or ".." in parts or str(name).strip().startswith(("/", "\\")) or ":" in parts[0]:
        raise error(f"{where}: '{name}' is not a relative file name inside the image folder")
    return "/".join(parts)


def cache_dir() -> Path:
    """Where derived data shared by every run is kept (features, ported weights, corrupted test images):
    ``IMGBENCH_CACHE``, else ~/.cache/imgbench."""
    return Path(os.environ.get("IMGBENCH_CACHE", Path.home() / ".cache" / "imgbench"))
