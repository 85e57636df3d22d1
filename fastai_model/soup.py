"""``python -m fastai_model.soup``: a greedy soup of fastai runs (benchmarks/training/soup.py), their PyTorch state
dicts averaged and saved as the usual serving artifact."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from benchmarks.training.soup import SoupKit, soup_main

from .serving import FastaiPredictor, save_serving_artifact


def weights(predictor: FastaiPredictor) -> list[np.ndarray]:
    return [tensor.detach().cpu().numpy().copy() for tensor in predictor.model.state_dict().values()]


def set_weights(predictor: FastaiPredictor, arrays: list[np.ndarray]) -> None:
    names = list(predictor.model.state_dict())
    predictor.model.load_state_dict({name: torch.from_numpy(a) for name, a in zip(names, arrays)})


def save(predictor: FastaiPredictor, run_dir: Path) -> Path:
    config = predictor.config
    return save_serving_artifact(
        predictor.model,
        run_dir,
        arch=config["arch"],
        backbone=config["backbone"],
        labels=predictor.labels,
        img_size=predictor.img_size,
        head_kwargs=config.get("head_kwargs") or None,
    )


KIT = SoupKit("fastai", weights, set_weights, save)

if __name__ == "__main__":
    sys.exit(soup_main(KIT))
