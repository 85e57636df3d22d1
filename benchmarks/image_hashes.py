"""Exact and perceptual image hashes, and the duplicate groups they imply."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import imagehash
import numpy as np

from .images import open_rgb

NEAR_DUPLICATE_BITS = 6  # pHash Hamming distance at or below which two images count as near duplicates


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def perceptual_hash(path: Path) -> int:
    """64-bit DCT perceptual hash as an integer (robust to resizing, compression and small edits)."""
    bits = imagehash.phash(open_rgb(path)).hash.flatten()
    return int("".join("1" if b else "0" for b in bits), 2)


def near_duplicate_pairs(hashes: Sequence[int], max_bits: int = NEAR_DUPLICATE_BITS) -> list[tuple[int, int, int]]:
    """All index pairs (i, j, distance) with i < j whose hashes differ in at most ``max_bits`` bits."""
    values = np.asarray([np.uint64(h) for h in hashes], dtype=np.uint64)
    pairs = []
    for i in range(len(values) - 1):
        distance = np.bitwise_count(values[i + 1 :] ^ values[i])
        for offset in np.flatnonzero(distance <= max_bits):
            pairs.append((i, i + 1 + int(offset), int(distance[offset])))
    return pairs


def duplicate_groups(exact: Sequence[str], perceptual: Sequence[int], max_bits: int = NEAR_DUPLICATE_BITS) -> np.ndarray:
    """Group id per image such that exact and near duplicates share a group (union-find)."""
    parent = list(range(len(exact)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        parent[find(i)] = find(j)

    first_seen: dict[str, int] = {}
    for i, digest in enumerate(exact):
        if digest in first_seen:
            union(i, first_seen[digest])
        else:
            first_seen[digest] = i
    for i, j, _ in near_duplicate_pairs(perceptual, max_bits):
        union(i, j)
    roots = [find(i) for i in range(len(exact))]
    _, group_ids = np.unique(roots, return_inverse=True)
    return group_ids
