"""The cloud services' families, declared for the model registry (no framework is imported here).

Their runs come from adapters (``python -m cloud_baselines``); only runs evaluated from an exported model file
(``tm-eval``, ``vertex-eval``) keep a model that can score new images.
"""

from benchmarks.models.registry import ModelFamily


def _evaluated_from_export(run) -> bool:
    return bool(run.params.get("export"))


FAMILIES = (
    ModelFamily(
        kind="teachable_machine",
        title="Teachable Machine",
        description="a Teachable Machine export (Keras, TF.js or TFLite), scored locally on the valid and test images",
        runtime="tensorflow",
        predictor="cloud_baselines.serving:ExportPredictor",
        has_model=_evaluated_from_export,
        no_model_reason="made from saved predictions, not from an export file",
    ),
    ModelFamily(
        kind="vertex_automl",
        title="Vertex AI AutoML",
        description="Vertex AI AutoML Vision: batch predictions, or an Edge export scored locally",
        runtime="tensorflow",
        predictor="cloud_baselines.serving:ExportPredictor",
        has_model=_evaluated_from_export,
        no_model_reason="made from batch predictions; the model stays in Google Cloud",
    ),
    ModelFamily(
        kind="vision_api",
        title="Cloud Vision API",
        description="Google's own labels (LABEL_DETECTION), mapped to ours: zero-shot, no training",
        no_model_reason="the Cloud Vision API answers online; its responses were ingested, there is no local model",
    ),
    ModelFamily(
        kind="roboflow",
        title="Roboflow",
        description="a Roboflow multi-label classification model's hosted predictions",
        no_model_reason="Roboflow's model is hosted; its responses were ingested, there is no local model",
    ),
)
