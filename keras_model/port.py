"""``python -m keras_model.port BACKBONE``: convert the registry's PyTorch weights into the cached Keras model."""

from __future__ import annotations

import sys

import benchmarks.models.torch_first  # noqa: F401  (PyTorch before TensorFlow)
from benchmarks.errors import BenchmarkError
from benchmarks.models.backbones import get_backbone

from .backbone import port_to_cache


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if len(argv) != 1:
            raise BenchmarkError("usage: python -m keras_model.port lite0|lite1|lite2")
        print(port_to_cache(get_backbone(argv[0])))
    except BenchmarkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
