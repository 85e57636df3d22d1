#!/usr/bin/env bash
# Run a command as an AVX2-only CPU would: every library that dispatches on the CPU's vector extensions at run time is
# capped at AVX2, so an AVX-512 machine estimates what a laptop without AVX-512 (or bf16) takes. Usage:
#   bash scripts/as-avx2.sh make demo
# An estimate of the instruction set's share only: clock, cache and core design still differ from a real AVX2-only
# CPU, and OpenVINO's release wheels cap only their oneDNN kernels (docs/trainers.md, "On a CPU without AVX-512").
set -euo pipefail
[[ $# -gt 0 ]] || { echo "usage: bash scripts/as-avx2.sh COMMAND [ARGS...]"; exit 2; }
export ONEDNN_MAX_CPU_ISA=AVX2      # oneDNN in PyTorch, TensorFlow and OpenVINO; run.json then says "capped at AVX2"
export ATEN_CPU_CAPABILITY=avx2     # PyTorch's own vectorised kernels
export OPENBLAS_CORETYPE=Haswell    # NumPy's and scikit-learn's BLAS
export XLA_FLAGS="${XLA_FLAGS:+$XLA_FLAGS }--xla_cpu_max_isa=AVX2"  # Keras on JAX
exec "$@"
