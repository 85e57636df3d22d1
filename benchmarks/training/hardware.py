"""What the machine offers for training: native bf16 on the CPU decides both trainers' mixed precision."""

from __future__ import annotations

from benchmarks.evaluation.machine import cpu_flags


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX: bf16 matrix maths in hardware, where bf16 autocast is worth it on a CPU."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def cpu_has_amx() -> bool:
    """Intel AMX tiles: where TensorFlow's bf16 kernels beat float32 on a CPU."""
    return "amx_bf16" in cpu_flags()
