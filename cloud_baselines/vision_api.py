"""Cloud Vision API label detection as a zero-shot baseline: responses → per-label scores → a run.

Vision returns its own open vocabulary ("Bird", "Musical instrument", ...) with independent scores. An
editable mapping file sends Vision labels to ours; a label's score is the highest score among the Vision
labels mapped to it, and 0 when none was returned. ``vision_labels/stampscenes.json`` is the default for StampScenes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from benchmarks.data.dataset import Dataset
from benchmarks.errors import BenchmarkError
from benchmarks.evaluation.results import EVAL_SPLITS
from benchmarks.exports.adapter_runs import match_to_dataset, write_adapter_run
from benchmarks.exports.class_mapping import map_classes

from .http_calls import cached_responses, post_json

DEFAULT_MAPPINGS = Path(__file__).parent / "vision_labels"


def response_labels(response: dict, where: str) -> dict[str, float]:
    """One AnnotateImageResponse (REST camelCase or the client library's snake_case) → {description: score}."""
    if "error" in response and response["error"]:
        message = response["error"].get("message", response["error"])
        raise BenchmarkError(f"{where}: the Vision API reported an error for this image: {message}")
    annotations = response.get("labelAnnotations", response.get("label_annotations", []))
    return {a["description"]: float(a.get("score", 0.0)) for a in annotations}


def read_responses(source: Path) -> dict[str, dict[str, float]]:
    """{image uri or cached file stem: {Vision label: score}} from asyncBatchAnnotate output files
    (``{"responses": [... "context": {"uri": ...}]}``) or a folder of them."""
    source = Path(source)
    files = sorted(source.rglob("*.json")) if source.is_dir() else [source]
    if not files or not files[0].is_file():
        raise BenchmarkError(f"{source}: no Vision API response JSON found")
    found: dict[str, dict[str, float]] = {}
    for path in files:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise BenchmarkError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        responses = data.get("responses") if isinstance(data, dict) else None
        if not isinstance(responses, list):
            raise BenchmarkError(f'{path}: expected {{"responses": [...]}} (Vision API annotate output)')
        for i, response in enumerate(responses):
            if not isinstance(response, dict) or not isinstance(response.get("context") or {}, dict):
                raise BenchmarkError(f"{path}: response {i} is not a Vision API response object")
            uri = (response.get("context") or {}).get("uri") or data.get("image_uri")
            if not uri:
                raise BenchmarkError(f"{path}: response {i} has no context.uri, so it cannot be matched to an image")
            found[uri] = response_labels(response, f"{path} response {i}")
    return found


VISION_URL = "https://vision.googleapis.com/v1/images:annotate"


def vision_auth(api_key: str | None) -> dict:
    """An API key (``?key=``) or Application Default Credentials (a bearer token)."""
    if api_key:
        return {"params": {"key": api_key}}
    import google.auth
    import google.auth.transport.requests

    try:
        credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-vision"])
        credentials.refresh(google.auth.transport.requests.Request())
    except google.auth.exceptions.DefaultCredentialsError:
        raise BenchmarkError(
            "Vision API: no credentials; pass --api-key (or set GOOGLE_API_KEY), or run `gcloud auth "
            "application-default login`"
        ) from None
    except google.auth.exceptions.RefreshError as exc:
        raise BenchmarkError(f"Vision API: the Application Default Credentials were refused ({exc})") from None
    return {"headers": {"Authorization": f"Bearer {credentials.token}"}}


def annotate(paths: list[Path], api_key: str | None, endpoint: str = VISION_URL, max_results: int = 20) -> list[dict]:
    """LABEL_DETECTION for each image through the REST API, cached by image hash."""
    import base64

    import requests

    session, auth = requests.Session(), vision_auth(api_key)

    def call(content: bytes) -> dict:
        body = {
            "requests": [
                {
                    "image": {"content": base64.b64encode(content).decode()},
                    "features": [{"type": "LABEL_DETECTION", "maxResults": max_results}],
                }
            ]
        }
        return post_json(session, endpoint, "Vision API", json=body, **auth)["responses"][0]

    return cached_responses(
        paths, "vision_api", call, desc="Vision API label detection", variant=f"{endpoint} maxResults={max_results}"
    )


def annotate_dataset(
    dataset: Dataset,
    results: Path,
    api_key: str | None,
    mapping_file: Path | None = None,
    endpoint: str = VISION_URL,
    max_results: int = 20,
):
    rows = dataset.rows(EVAL_SPLITS)
    answers = annotate(dataset.image_paths(EVAL_SPLITS), api_key, endpoint, max_results)
    per_image = [response_labels(answer, rel) for answer, rel in zip(answers, rows["image"])]
    return labels_to_run(per_image, dataset, results, mapping_file, {"endpoint": endpoint, "max_results": max_results})


def default_mapping(dataset: Dataset) -> Path | None:
    candidate = DEFAULT_MAPPINGS / f"{dataset.name.lower()}.json"
    return candidate if candidate.is_file() else None


def ingest_vision_responses(source: Path, dataset: Dataset, results: Path, mapping_file: Path | None = None):
    per_image = match_to_dataset(read_responses(source), dataset, source)
    return labels_to_run(per_image, dataset, results, mapping_file, {"source": str(Path(source).resolve())})


def labels_to_run(
    per_image: list[dict[str, float]], dataset: Dataset, results: Path, mapping_file: Path | None, params: dict
):
    mapping_file = mapping_file or default_mapping(dataset)
    vocabulary = sorted({name for scores in per_image for name in scores})
    mapping = map_classes(vocabulary, dataset.labels, mapping_file)
    mapped = [c for c, t in zip(mapping.classes, mapping.targets) if t is not None]
    print(
        f"  {len(mapped)} of {len(vocabulary)} Vision labels seen map to dataset labels "
        f"({', '.join(mapped[:8])}{' …' if len(mapped) > 8 else ''})"
    )
    for label in mapping.unscored_labels:
        print(f"  label {label!r}: no Vision label maps to it; scored 0 on every image")
    class_scores = np.array([[scores.get(c, 0.0) for c in vocabulary] for scores in per_image])
    params = {**params, "mapping_file": str(mapping_file) if mapping_file else None, "zero_shot": True}
    return write_adapter_run(
        dataset,
        results,
        kind="vision_api",
        label_scores=mapping.label_scores(class_scores),
        params=params,
        mapping=mapping,
    )
