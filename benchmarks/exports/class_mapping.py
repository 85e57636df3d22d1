"""Label files of exported models, and how their classes map to a dataset's labels.

A service's class names rarely equal ours ("FRESH APPLE" vs "fresh_apple"): names match ignoring case,
spaces, underscores and hyphens, or through a JSON mapping file ``{"service class": "our label" | null}``.
Every class and label left unmatched is reported, never silently dropped.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.errors import BenchmarkError


def read_indexed_labels(path: Path) -> list[str]:
    """Teachable Machine's labels.txt: ``"<index> <name>"`` per line; names may hold spaces, indexes pass 9."""
    names: dict[int, str] = {}
    for number, line in enumerate(_lines(path), start=1):
        index, _, name = line.partition(" ")
        if not index.isdigit() or not name.strip():
            raise BenchmarkError(f"{path}:{number}: expected '<index> <class name>', got {line!r}")
        names[int(index)] = name.strip()
    if sorted(names) != list(range(len(names))):
        raise BenchmarkError(f"{path}: class indexes must run 0..{len(names) - 1} without gaps")
    return [names[i] for i in range(len(names))]


def read_plain_labels(path: Path) -> list[str]:
    """AutoML's dict.txt: one class name per line, line i = output i."""
    return [line.strip() for line in _lines(path)]


def _lines(path: Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise BenchmarkError(f"{path}: label file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise BenchmarkError(f"{path}: not a UTF-8 text file") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise BenchmarkError(f"{path}: no class names in the file")
    return lines


def normalise(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name).lower()


@dataclass
class ClassMapping:
    """``targets[i]``: the dataset label service class i scores, or None (ignored)."""

    classes: list[str]
    labels: list[str]
    targets: list[str | None]

    @property
    def unmapped_classes(self) -> list[str]:
        return [c for c, t in zip(self.classes, self.targets) if t is None]

    @property
    def unscored_labels(self) -> list[str]:
        return [label for label in self.labels if label not in self.targets]

    def report(self) -> list[str]:
        lines = [f"class {c!r} -> {t}" for c, t in zip(self.classes, self.targets) if t is not None]
        lines += [f"class {c!r} matches no dataset label: ignored" for c in self.unmapped_classes]
        lines += [f"label {label!r} has no class: scored 0 on every image" for label in self.unscored_labels]
        return lines

    def label_scores(self, class_scores: np.ndarray) -> np.ndarray:
        """images × classes → images × labels; a label fed by several classes takes their highest score."""
        out = np.zeros((class_scores.shape[0], len(self.labels)), dtype=np.float64)
        for i, target in enumerate(self.targets):
            if target is not None:
                j = self.labels.index(target)
                out[:, j] = np.maximum(out[:, j], class_scores[:, i])
        return np.clip(out, 0.0, 1.0)

    def to_dict(self) -> dict:
        return {c: t for c, t in zip(self.classes, self.targets)}


def map_classes(classes: list[str], labels: list[str], mapping_file: Path | None = None) -> ClassMapping:
    if mapping_file:
        explicit = _read_mapping(Path(mapping_file), labels)
        targets = [explicit.get(c, explicit.get(normalise(c))) for c in classes]
    else:
        by_name = {normalise(label): label for label in labels}
        targets = [by_name.get(normalise(c)) for c in classes]
    mapping = ClassMapping(list(classes), list(labels), targets)
    if all(t is None for t in targets):
        raise BenchmarkError(
            f"none of the model's classes ({', '.join(classes[:6])}) matches a dataset label "
            f"({', '.join(labels[:6])}); "
            'write a mapping file {"class": "label"} and pass --mapping'
        )
    return mapping


def _read_mapping(path: Path, labels: list[str]) -> dict[str, str | None]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BenchmarkError(f"{path}: mapping file not found") from None
    except json.JSONDecodeError as exc:
        raise BenchmarkError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise BenchmarkError(f'{path}: expected a JSON object {{"class": "label" or null}}')
    for name, label in data.items():
        if label is not None and label not in labels:
            raise BenchmarkError(
                f"{path}: class {name!r} maps to {label!r}, which is not a dataset label ({', '.join(labels)})"
            )
    return {**{normalise(k): v for k, v in data.items()}, **data}
