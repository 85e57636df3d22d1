"""Exact and perceptual image hashes, and the duplicate groups they imply."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import imagehash
import numpy as np

from .images import open_rgb

NEAR_DUPLICATE_BITS = 6  # pHash Hamming distance at or below which two images may be near duplicates
MAX_THUMB_DIFFERENCE = 12.0  # ...confirmed when their 16x16 colour thumbnails differ by at most this (mean, 0-255)
THUMB_SIDE = 16


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def perceptual_signature(path: Path) -> tuple[int, bytes]:
    """64-bit DCT perceptual hash (robust to resizing, compression, small edits) and a 16x16 colour thumbnail.

    pHash alone calls two images alike when both are mostly the same smooth background; the thumbnail
    comparison confirms that the colours match too.
    """
    image = open_rgb(path)
    bits = imagehash.phash(image).hash.flatten()
    thumb = np.asarray(image.resize((THUMB_SIDE, THUMB_SIDE)), dtype=np.uint8).tobytes()
    return int("".join("1" if b else "0" for b in bits), 2), thumb


def thumbs_alike(a: bytes, b: bytes) -> bool:
    diff = np.abs(np.frombuffer(a, np.uint8).astype(np.int16) - np.frombuffer(b, np.uint8).astype(np.int16))
    return float(diff.mean()) <= MAX_THUMB_DIFFERENCE


def near_duplicate_pairs(
    hashes: Sequence[int], thumbs: Sequence[bytes], max_bits: int = NEAR_DUPLICATE_BITS
) -> list[tuple[int, int, int]]:
    """Index pairs (i, j, distance), i < j, whose hashes differ in at most ``max_bits`` bits and thumbnails match."""
    values = np.asarray([np.uint64(h) for h in hashes], dtype=np.uint64)
    pairs = []
    for i in range(len(values) - 1):
        distance = np.bitwise_count(values[i + 1 :] ^ values[i])
        for offset in np.flatnonzero(distance <= max_bits):
            j = i + 1 + int(offset)
            if thumbs_alike(thumbs[i], thumbs[j]):
                pairs.append((i, j, int(distance[offset])))
    return pairs


def duplicate_groups(
    exact: Sequence[str], perceptual: Sequence[int], thumbs: Sequence[bytes], max_bits: int = NEAR_DUPLICATE_BITS
) -> np.ndarray:
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
    for i, j, _ in near_duplicate_pairs(perceptual, thumbs, max_bits):
        union(i, j)
    roots = [find(i) for i in range(len(exact))]
    _, group_ids = np.unique(roots, return_inverse=True)
    return group_ids
