"""What machine and process made a run: the environment run.json records (CPU, its vector extensions, packages), the
process's peak memory, and whether a process that is writing a run is still alive."""

from __future__ import annotations

import os
import platform
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path

PACKAGES = ("numpy", "scikit-learn", "torch", "timm", "fastai", "tensorflow-cpu", "tensorflow", "keras", "pillow")


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (Linux reports ru_maxrss in KB)."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def environment() -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    gpu = None
    if "torch" in sys.modules and sys.modules["torch"].cuda.is_available():
        gpu = sys.modules["torch"].cuda.get_device_name(0)
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "cpu_features": _cpu_features(),
        "cpu_count": os.cpu_count(),
        "gpu": gpu,
        "packages": versions,
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# The vector extensions that move training and serving speed most (and scores by bf16 rounding): the same seed on
# an AVX2-only and an AMX CPU differs, so every figure names them.
CPU_FEATURES = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")

# oneDNN's dispatcher cap, honoured by PyTorch's, TensorFlow's and OpenVINO's oneDNN kernels: a machine capped at AVX2
# computes like an AVX2-only one, so the features it reports (and the precision "auto" picks) follow the cap.
ISA_CAP_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
_HIDDEN_BY_CAP = {
    "SSE41": ("avx", "amx"),
    "AVX": ("avx2", "avx512", "amx"),
    "AVX2": ("avx512", "amx"),
    "AVX2_VNNI": ("avx512", "amx"),
    "AVX2_VNNI_2": ("avx512", "amx"),
    "AVX512_CORE": ("avx512_bf16", "amx"),
    "AVX512_CORE_VNNI": ("avx512_bf16", "amx"),
    "AVX512_CORE_BF16": ("amx",),
    "AVX10_1_512": ("amx",),
    "AVX512_CORE_FP16": ("amx",),
}


def isa_cap() -> str | None:
    """The ISA oneDNN is capped at (``AVX2``), or None where nothing below the CPU's own is set."""
    for name in ISA_CAP_VARIABLES:
        value = os.environ.get(name, "").strip().upper()
        if value:
            return value if value in _HIDDEN_BY_CAP else None
    return None


@lru_cache(maxsize=1)
def _cpuinfo_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return frozenset()
    return frozenset(
        flag for line in text.splitlines() if line.startswith("flags") for flag in line.split(":", 1)[1].split()
    )


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo, less those an ISA cap hides (empty where there is no cpuinfo)."""
    hidden = _HIDDEN_BY_CAP.get(isa_cap() or "", ())
    return {flag for flag in _cpuinfo_flags() if not flag.startswith(hidden)} if hidden else set(_cpuinfo_flags())


def _cpu_features() -> list[str]:
    """The speed-moving features as the frameworks see them, then the cap where one is set (``capped at AVX2``)."""
    flags = cpu_flags()
    features = [name for name in CPU_FEATURES if name in flags]
    cap = isa_cap()
    return features + [f"capped at {cap}"] if cap else features


def process_start(pid: int) -> int | None:
    """The process's start time in clock ticks (/proc), so a recycled pid is not mistaken for the run's process."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def process_alive(pid: int, started: int | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return started is None or process_start(pid) in (None, started)
