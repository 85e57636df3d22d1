"""Keras 3's backend for a run: TensorFlow, JAX or PyTorch, the same model code, weights and recipe; input through
tf.data where TensorFlow is installed, else Keras' backend-neutral PyDataset (``--loader``, keras_model/inputs.py).

Keras reads its backend once, when it is first imported (``KERAS_BACKEND``), so the choice is made before that:
``python -m keras_model.train --backend jax`` sets it from the command line; in a process where Keras is already
loaded (a test, the dashboard) a run may only ask for the backend loaded there.
"""

from __future__ import annotations

import importlib.util
import os
import sys

from benchmarks.errors import BenchmarkError

BACKENDS = ("tensorflow", "jax", "torch")  # Keras' own names
DEFAULT = "tensorflow"
LOADERS = ("tf.data", "pydataset")  # keras_model/inputs.py


def installed_backends() -> tuple[str, ...]:
    """The backends whose framework is installed here."""
    return tuple(name for name in BACKENDS if importlib.util.find_spec(name) is not None)


def default_loader() -> str:
    """tf.data where TensorFlow is installed (whatever the backend), else the PyDataset that needs none."""
    return "tf.data" if importlib.util.find_spec("tensorflow") is not None else "pydataset"


def choose_from_argv(argv: list[str]) -> None:
    """``--backend NAME`` (or ``--backend=NAME``) into ``KERAS_BACKEND``, before Keras is imported. Only the
    command line's own process calls this; a wrong name is left for argparse to refuse with the choices. Without
    either, on a machine without TensorFlow, the first installed of PyTorch and JAX (run.json names it)."""
    for i, word in enumerate(argv):
        value = argv[i + 1] if word == "--backend" and i + 1 < len(argv) else word.partition("=")[2]
        if (word == "--backend" or word.startswith("--backend=")) and value in BACKENDS:
            os.environ["KERAS_BACKEND"] = value
    installed = installed_backends()
    if not os.environ.get("KERAS_BACKEND") and DEFAULT not in installed and installed:
        os.environ["KERAS_BACKEND"] = "torch" if "torch" in installed else installed[0]
    wanted = os.environ.get("KERAS_BACKEND") or DEFAULT
    if wanted in BACKENDS and wanted not in installed:
        print(
            f"error: Keras backend {wanted!r} is not installed here; pip install {wanted}, or choose --backend "
            f"{' or '.join(installed) or 'jax or torch after installing one'}",
            file=sys.stderr,
        )
        raise SystemExit(2)


def loaded(requested: str | None) -> str:
    """The backend Keras runs on in this process, which must be the one a run asks for."""
    import keras

    backend = keras.backend.backend()
    if requested and requested != backend:
        raise BenchmarkError(
            f"--backend {requested}: Keras is already loaded with the {backend} backend in this process; run "
            f"`python -m keras_model.train --backend {requested} ...` (or set KERAS_BACKEND={requested} first)"
        )
    if backend not in installed_backends():
        raise BenchmarkError(f"Keras backend {backend!r} is not installed; pip install {backend}")
    return backend


def has_gpu(backend: str) -> bool:
    """Whether the backend's own framework sees a GPU (each asks its own runtime)."""
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    if backend == "jax":
        import jax

        return jax.default_backend() == "gpu"
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))
