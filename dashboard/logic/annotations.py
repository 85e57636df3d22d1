"""Runs hidden or tagged on the leaderboard, kept in the results folder for every visitor."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

ANNOTATIONS = Path(".dashboard") / "annotations.json"  # under the results folder: runs hidden and tagged here


def load_annotations(results: Path) -> tuple[dict, str | None]:
    """``{"hidden": [run ids], "tags": {run id: text}}`` kept by the leaderboard, and a warning when the file is
    damaged (then nothing is hidden or tagged, and the next save rewrites it)."""
    empty = {"hidden": [], "tags": {}}
    path = Path(results) / ANNOTATIONS
    if not path.is_file():
        return empty, None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        hidden, tags = data.get("hidden", []), data.get("tags", {})
        if not (isinstance(hidden, list) and isinstance(tags, dict)):
            raise ValueError("hidden must be a list and tags an object")
        return {"hidden": [str(h) for h in hidden], "tags": {str(k): str(v) for k, v in tags.items()}}, None
    except (ValueError, AttributeError) as exc:
        return empty, f"{path}: not readable ({exc}); hidden runs and tags start afresh"


def save_annotations(results: Path, hidden: list[str], tags: dict[str, str]) -> None:
    from benchmarks.atomic import atomic_write_json

    path = Path(results) / ANNOTATIONS
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {"hidden": sorted(hidden), "tags": {k: v for k, v in sorted(tags.items()) if v.strip()}})


def annotated(table: pd.DataFrame, annotations: dict, show_hidden: bool = False) -> pd.DataFrame:
    """The leaderboard with a ``tag`` column after the name, and hidden runs left out unless asked for."""
    table = table.copy()
    table.insert(table.columns.get_loc("name") + 1, "tag", [annotations["tags"].get(r, "") for r in table["run"]])
    return table if show_hidden else table[~table["run"].isin(annotations["hidden"])].reset_index(drop=True)
