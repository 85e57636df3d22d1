"""The weights of any TensorFlow.js model (layers or graph): ``model.json``'s ``weightsManifest`` + binary shards.

Why here, shared: TM's layers models and AutoML's graph models store weights the same way — groups of shard
files, concatenated, holding tensors back to back in manifest order, little-endian; entries may be quantized
(``uint8``/``uint16`` affine with ``min`` + ``scale``, or ``float16``). Shard paths come from the file, so they go
through the path policy: a manifest cannot make us read outside the export folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from benchmarks.data.paths import inside
from benchmarks.errors import BenchmarkError

STORED_DTYPES = {"float32": "<f4", "int32": "<i4", "bool": "u1"}
QUANTIZED_DTYPES = {"uint8": "u1", "uint16": "<u2", "float16": "<f2"}


def read_model_json(model_json: Path) -> dict:
    """model.json as a dict, or one line saying what is wrong with it."""
    try:
        spec = json.loads(Path(model_json).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BenchmarkError(f"{model_json}: not valid JSON ({exc.msg})") from None
    except UnicodeDecodeError:
        raise BenchmarkError(f"{model_json}: not a text file; is this a TensorFlow.js model.json?") from None
    if not isinstance(spec, dict):
        raise BenchmarkError(f"{model_json}: expected a JSON object (a TF.js model), found {type(spec).__name__}")
    if not isinstance(spec.get("modelTopology"), dict):
        raise BenchmarkError(f"{model_json}: no modelTopology object; is this a TensorFlow.js model.json?")
    return spec


def read_manifest_weights(model_json: Path, spec: dict) -> dict[str, np.ndarray]:
    """``{name: array}`` for every entry of the manifest, dequantized to float32 where the entry is quantized."""
    manifest = spec.get("weightsManifest", [])
    if not isinstance(manifest, list) or not all(
        isinstance(g, dict) and isinstance(g.get("paths"), list) and isinstance(g.get("weights"), list)
        for g in manifest
    ):
        raise BenchmarkError(
            f"{model_json}: weightsManifest should be a list of {{paths, weights}} groups; re-download the export"
        )
    weights: dict[str, np.ndarray] = {}
    for group in manifest:
        blob = b"".join(_shard(model_json, shard) for shard in group["paths"])
        offset = 0
        for entry in group["weights"]:
            name, array, offset = _entry(model_json, entry, blob, offset, " + ".join(map(str, group["paths"])))
            weights[name] = array
    if not weights:
        raise BenchmarkError(f"{model_json}: the weightsManifest lists no weights; re-download the export")
    return weights


def _shard(model_json: Path, shard) -> bytes:
    shard_path = inside(model_json.parent, str(shard), f"{model_json}: weight file", BenchmarkError)
    if not shard_path.is_file():
        raise BenchmarkError(f"{shard_path}: weight file named in model.json is missing")
    return shard_path.read_bytes()


def _entry(model_json: Path, entry, blob: bytes, offset: int, files: str) -> tuple[str, np.ndarray, int]:
    if (
        not isinstance(entry, dict)
        or not isinstance(entry.get("name"), str)
        or not isinstance(entry.get("shape"), list)
    ):
        raise BenchmarkError(f"{model_json}: a weightsManifest entry lacks its name or shape; re-download the export")
    name, shape = entry["name"], [int(d) for d in entry["shape"]]
    count = int(np.prod(shape)) if shape else 1
    quantization = entry.get("quantization")
    dtype = entry.get("dtype", "float32")
    if quantization is not None:
        stored = QUANTIZED_DTYPES.get(quantization.get("dtype") if isinstance(quantization, dict) else None)
    else:
        stored = STORED_DTYPES.get(dtype)
    if stored is None:
        raise BenchmarkError(
            f"{model_json}: weight {name} is stored as {quantization or dtype}, which this reader does not know"
        )
    size = np.dtype(stored).itemsize * count
    if offset + size > len(blob):
        raise BenchmarkError(
            f"{model_json.parent}: {files} is shorter than model.json says (truncated download?); re-download it"
        )
    raw = np.frombuffer(blob, dtype=stored, count=count, offset=offset).reshape(shape)
    if quantization is None:
        array = raw.astype(np.bool_) if dtype == "bool" else raw
    elif quantization["dtype"] == "float16":
        array = raw.astype(np.float32)
    else:  # affine: value = min + scale * q
        array = (quantization["min"] + quantization["scale"] * raw.astype(np.float32)).astype(np.float32)
    return name, array, offset + size
