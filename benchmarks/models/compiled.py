"""A network run by OpenVINO instead of its framework, accepted only where it gives the framework's numbers.

Why: on a 2-core CPU the same EfficientNet-Lite runs ~2-3x faster through OpenVINO than through PyTorch or
TensorFlow eager (docs/api.md), and frozen features, the probe and the served models are all that network. Why
OpenVINO: one converter takes PyTorch and Keras models straight from the framework objects. An export is made once
into a scratch folder, checked against the framework on fixed inputs, and only then moved in whole with its
``parity.json``; a folder without that file is never used.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from benchmarks.errors import RunError, first_line

PARITY_TOLERANCE = 1e-4
GRAPH_FILE = "model.xml"  # + model.bin beside it
PARITY_FILE = "parity.json"


def probe_images(count: int = 6) -> list[Image.Image]:
    """Deterministic, varied pictures (noise, shapes, odd sizes) for the parity check: no dataset needed."""
    rng = np.random.default_rng(0)
    images = []
    for i in range(count):
        size = (160 + 37 * i, 224 - 11 * i)
        image = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
        draw = ImageDraw.Draw(image)
        for _ in range(4):
            x0, y0 = rng.integers(0, size[0] // 2), rng.integers(0, size[1] // 2)
            fill = tuple(int(v) for v in rng.integers(0, 256, 3))
            draw.ellipse((x0, y0, x0 + size[0] // 3, y0 + size[1] // 3), fill=fill)
        images.append(image)
    return images


def export_torch(model, xml_path: Path, example: np.ndarray) -> None:
    """A PyTorch module to OpenVINO IR with a free batch dimension, fp32 weights (fp16 moved scores by ~1e-2)."""
    import openvino as ov
    import torch

    shape = ov.PartialShape([-1, *example.shape[1:]])
    with warnings.catch_warnings():
        # OpenVINO traces with torch.jit.trace, which PyTorch marks deprecated: nothing a user can act on
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.trace", category=FutureWarning)
        network = ov.convert_model(model, example_input=torch.from_numpy(example), input=[shape])
    ov.save_model(network, str(xml_path), compress_to_fp16=False)


class OpenVinoNetwork:
    """A compiled OpenVINO model; one synchronous infer request, so callers serialise calls (a batcher does)."""

    def __init__(self, xml_path: Path):
        import openvino as ov

        # f32 inference: on CPUs with avx512_bf16 OpenVINO's default is bf16, which moved scores by up to 0.1
        # against the fp32 model (the served model must be the scored one)
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
        threads = os.environ.get("OMP_NUM_THREADS", "")  # a grid cell's share of the machine, when one is set
        if threads.isdigit() and int(threads) > 0:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        try:
            self.compiled = ov.Core().compile_model(str(xml_path), "CPU", config)
        except Exception as exc:  # noqa: BLE001  (a damaged export: one line, and the caller may re-export)
            raise RunError(f"{xml_path}: cannot compile the OpenVINO model ({first_line(exc)})") from None

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self.compiled(np.ascontiguousarray(batch))[0], dtype=np.float32)


def load_checked(folder: Path) -> tuple[OpenVinoNetwork, dict] | None:
    """The export in ``folder`` with the parity it was accepted with; None when there is none (or it is damaged)."""
    try:
        parity = json.loads((folder / PARITY_FILE).read_text())
        return OpenVinoNetwork(folder / GRAPH_FILE), parity
    except (OSError, ValueError, RunError):
        return None


def export_checked(
    folder: Path,
    export: Callable[[Path], None],
    difference: Callable[[OpenVinoNetwork], float],
    what: str,
    fallback: str,
    about: dict,
    tolerance: float = PARITY_TOLERANCE,
) -> tuple[OpenVinoNetwork, dict]:
    """``export(xml_path)`` into a scratch folder beside ``folder``, then ``difference(network)`` against the
    framework; moved into ``folder`` only when it is within ``tolerance``. ``about`` names what was compared (kept in
    parity.json); errors name ``what`` and ``fallback`` (what the user can do instead)."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".export-", dir=folder.parent))
    except OSError as exc:
        raise RunError(f"{folder.parent}: cannot write the OpenVINO export here ({exc.strerror}); {fallback}") from None
    try:
        try:
            export(scratch / GRAPH_FILE)
        except Exception as exc:  # noqa: BLE001  (converter errors are many and deep: one line names the model)
            raise RunError(
                f"{what}: OpenVINO export failed ({exc.__class__.__name__}: {first_line(exc)}); {fallback}"
            ) from None
        measured = difference(OpenVinoNetwork(scratch / GRAPH_FILE))
        if not measured <= tolerance:
            raise RunError(
                f"{what}: the OpenVINO export differs from the native model by {measured:.2g} (> {tolerance:g}); "
                f"{fallback}"
            )
        parity = {"max_abs_difference": measured, "tolerance": tolerance, **about}
        (scratch / PARITY_FILE).write_text(json.dumps(parity))
        shutil.rmtree(folder, ignore_errors=True)
        try:
            scratch.rename(folder)
        except OSError:  # another process (a grid cell) moved its own checked export in first: use that one
            loaded = load_checked(folder)
            if loaded is None:
                raise RunError(f"{folder}: cannot move the OpenVINO export in place; {fallback}") from None
            return loaded
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return OpenVinoNetwork(folder / GRAPH_FILE), parity


def compiled_or_native(
    folder: Path,
    export: Callable[[Path], None],
    native: Callable[[np.ndarray], np.ndarray],
    example: np.ndarray,
    what: str,
) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    """A frozen network's OpenVINO run (exported into ``folder`` once, accepted where its outputs on ``example`` are
    within ``PARITY_TOLERANCE`` of ``native``'s) and ``"openvino"``; else ``native`` and ``"native"``, with one line
    on stderr saying why."""
    try:
        network, _ = load_checked(folder) or export_checked(
            folder,
            export,
            lambda network: float(np.abs(network(example) - native(example)).max()),
            what=what,
            fallback="running it natively",
            about={"compared": "network outputs", "images": "probe_images()"},
        )
    except RunError as exc:
        print(f"note: {exc}", file=sys.stderr)
        return native, "native"
    return network, "openvino"
