"""The framework-light serving artifact: a plain state dict + serving.json, loaded without unpickling anything."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from fastai.vision.learner import create_timm_model
from PIL import Image
from scipy.special import expit

from benchmarks.atomic import atomic_write, atomic_write_json
from benchmarks.errors import RunError
from benchmarks.evaluation.results import read_run_file
from benchmarks.models.backbones import backbone_input, get_backbone
from benchmarks.models.compiled import export_torch

STATE_FILE = "model_state.pt"
CONFIG_FILE = "serving.json"
HEAD_KWARGS = {"concat_pool", "lin_ftrs", "first_bn", "ps"}  # the create_head arguments a run may record


def save_serving_artifact(
    model: torch.nn.Module,
    out_dir: Path,
    *,
    arch: str,
    backbone: str,
    labels: list[str],
    img_size: int,
    head_kwargs: dict | None = None,
) -> Path:
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(out_dir / STATE_FILE, lambda tmp: torch.save(state, tmp))
    atomic_write_json(
        out_dir / CONFIG_FILE,
        {
            "framework": "fastai",
            "arch": arch,
            "backbone": backbone,
            "labels": labels,
            "img_size": img_size,
            "head": "fastai create_head" + (f" {head_kwargs}" if head_kwargs else ", concat pooling"),
            "head_kwargs": head_kwargs or {},
        },
    )
    return out_dir / STATE_FILE


class FastaiPredictor:
    """Sigmoid scores for PIL images from a run's serving artifact (``weights_only`` load: no pickle code runs)."""

    def __init__(self, run_dir: Path | str):
        run_dir = Path(run_dir)
        config_path, state_path = run_dir / CONFIG_FILE, run_dir / STATE_FILE
        if not config_path.is_file() or not state_path.is_file():
            raise RunError(
                f"{run_dir}: no fastai serving artifact ({CONFIG_FILE} + {STATE_FILE}); is this a finished fastai run?"
            )
        self.config = read_run_file(run_dir, CONFIG_FILE, ("arch", "backbone", "labels", "img_size"))
        self.labels = list(self.config["labels"])
        self.backbone = get_backbone(self.config["backbone"])
        self.img_size = int(self.config["img_size"])
        head = self.config.get("head_kwargs") or {}
        if not isinstance(head, dict) or not set(head) <= HEAD_KWARGS:
            raise RunError(f"{config_path}: head_kwargs should be an object with keys from {sorted(HEAD_KWARGS)}")
        model, _ = create_timm_model(self.config["arch"], len(self.labels), pretrained=False, **head)
        try:
            model.load_state_dict(torch.load(state_path, map_location="cpu", weights_only=True))
        except Exception as exc:
            raise RunError(
                f"{state_path}: cannot load model weights ({exc.__class__.__name__}); the file may be damaged"
            ) from None
        self.model = model.eval().to(memory_format=torch.channels_last)

    def predict(self, images: list[Image.Image]) -> np.ndarray:
        """The same three steps that serving batches or hands to another runtime (benchmarks.serving.runtime)."""
        return self.scores_from_output(self.network_output(self.network_input(images)))

    # What serving needs (benchmarks.serving.runtime): the network alone, on numpy batches.
    # No PyTorch op on this path: PyTorch's OpenMP threads spin for a while after each op and took the cores from
    # the OpenVINO network that runs next (17.3 ms per image instead of 13.7 ms for its parts timed apart).
    def network_input(self, images: list[Image.Image]) -> np.ndarray:
        return backbone_input(images, self.backbone, self.img_size)  # N, C, H, W, contiguous

    @torch.inference_mode()
    def network_output(self, batch: np.ndarray) -> np.ndarray:
        tensor = torch.from_numpy(batch).contiguous(memory_format=torch.channels_last)
        return self.model(tensor).float().numpy()

    def scores_from_output(self, logits: np.ndarray) -> np.ndarray:
        return expit(logits)

    def export_openvino(self, xml_path: Path, example: np.ndarray) -> None:
        export_torch(self.model, xml_path, example)
