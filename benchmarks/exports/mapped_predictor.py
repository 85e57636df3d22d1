"""Label scores from a classifier whose classes are not the dataset's labels (a TM or AutoML export, the TM
replica): each run records how its classes map to labels (``params.class_mapping``), and new images are scored exactly
as the valid and test images were."""

from __future__ import annotations

import numpy as np
from PIL import Image

from benchmarks.errors import RunError

from .class_mapping import ClassMapping


def _mapping(run) -> ClassMapping:
    params = run.params
    classes, mapped = params.get("classes"), params.get("class_mapping")
    if not isinstance(classes, list) or not isinstance(mapped, dict):
        raise RunError(
            f"{run.path / 'run.json'}: no params.classes / params.class_mapping; re-run the evaluation that made this "
            "run"
        )
    return ClassMapping(list(classes), run.labels, [mapped.get(c) for c in classes])


class MappedPredictor:
    """Label scores for PIL images from a classifier with ``predict(image) -> class scores``."""

    def __init__(self, run, classifier):
        self.mapping = _mapping(run)
        self.labels = run.labels
        self.classifier = classifier
        if classifier.n_classes != len(self.mapping.classes):
            raise RunError(
                f"{run.path}: the model outputs {classifier.n_classes} classes but the run lists "
                f"{len(self.mapping.classes)}"
            )

    def predict(self, images: list[Image.Image]) -> np.ndarray:
        class_scores = self.classifier.predict_batch([image.convert("RGB") for image in images])
        return self.mapping.label_scores(class_scores).astype(np.float32)


class MappedNetworkPredictor(MappedPredictor):
    """A mapped classifier whose network stands apart from its preprocessing (TM's Keras rebuilds, the TM replica):
    the server batches it and can run it through OpenVINO, like the trainers' networks."""

    def network_input(self, images: list[Image.Image]) -> np.ndarray:
        return self.classifier.network_input([image.convert("RGB") for image in images])

    def network_output(self, batch: np.ndarray) -> np.ndarray:
        return self.classifier.network_output(batch)

    def scores_from_output(self, class_scores: np.ndarray) -> np.ndarray:
        return self.mapping.label_scores(class_scores).astype(np.float32)

    def export_openvino(self, xml_path, example: np.ndarray) -> None:
        self.classifier.export_openvino(xml_path, example)
