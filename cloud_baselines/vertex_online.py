"""Vertex AI AutoML end to end from the CLI: upload, dataset, training, batch prediction, ingest.

Uses ``google-cloud-storage`` and ``google-cloud-aiplatform`` with Application Default Credentials (or a
key file through GOOGLE_APPLICATION_CREDENTIALS). ``--dry-run`` prints every resource it would create and
the node-hours it would spend, and touches nothing. The SDK modules are parameters so tests can hand in
fakes: Google cannot be reached from the machines this suite is tested on.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from benchmarks.data.dataset import Dataset
from benchmarks.errors import BenchmarkError
from benchmarks.evaluation.results import EVAL_SPLITS

from .vertex_automl import MAPPING_FILE, ML_USE, export_import_files, ingest_batch_predictions

MODEL_TYPES = {"cloud": "CLOUD", "mobile": "MOBILE_TF_HIGH_ACCURACY_1"}  # mobile = exportable Edge model
ML_USE_FILTER = "labels.aiplatform.googleapis.com/ml_use={}"


@dataclass
class VertexPlan:
    project: str
    location: str
    bucket: str  # gs://bucket[/folder]
    name: str
    budget_milli_node_hours: int = 8000
    model_type: str = "cloud"

    @property
    def prefix(self) -> str:
        return f"{self.bucket.rstrip('/')}/{self.name}"

    def check(self) -> None:
        if not self.project:
            raise BenchmarkError("Vertex AI: no project; pass --project or set GOOGLE_CLOUD_PROJECT")
        if not self.bucket.startswith("gs://"):
            raise BenchmarkError(
                f"--bucket {self.bucket!r}: give a gs:// bucket (in {self.location}) for images and predictions"
            )
        if self.model_type not in MODEL_TYPES:
            raise BenchmarkError(f"--model-type {self.model_type!r}: choose cloud or mobile")
        low = 8000 if self.model_type == "cloud" else 1000
        if not low <= self.budget_milli_node_hours <= 800_000:
            raise BenchmarkError(
                f"--budget {self.budget_milli_node_hours}: Vertex takes {low}..800000 milli node hours for a "
                f"{self.model_type} model"
            )


def steps(dataset: Dataset, plan: VertexPlan) -> list[str]:
    n_eval = len(dataset.rows(EVAL_SPLITS))
    return [
        f"upload {len(dataset.items)} images to {plan.prefix}/images/ (skipping those already there)",
        f"upload the import file {plan.prefix}/import.jsonl (multi-label; ML_USE "
        f"{', '.join(f'{k}→{v}' for k, v in ML_USE.items())})",
        f"create ImageDataset '{plan.name}' in {plan.project}/{plan.location} from it",
        f"train AutoMLImageTrainingJob '{plan.name}' (classification, multi_label=True, "
        f"model_type={MODEL_TYPES[plan.model_type]}) "
        f"with a budget of {plan.budget_milli_node_hours} milli node hours = {plan.budget_milli_node_hours / 1000:g} "
        "node hours",
        f"batch-predict the {n_eval} valid + test images into {plan.prefix}/predictions/",
        "download the prediction JSONL and ingest it as a vertex_automl run",
    ]


def default_clients():
    import google.auth
    from google.cloud import aiplatform, storage

    try:
        google.auth.default()
    except google.auth.exceptions.DefaultCredentialsError:
        raise BenchmarkError(
            "Vertex AI: no credentials; run `gcloud auth application-default login` or set "
            "GOOGLE_APPLICATION_CREDENTIALS to a key file"
        ) from None
    return aiplatform, storage


def run_vertex(
    dataset: Dataset, plan: VertexPlan, results: Path, *, dry_run: bool = False, aiplatform=None, storage=None
):
    plan.check()
    if dry_run:
        print("dry run — nothing is created; this would:")
        for number, step in enumerate(steps(dataset, plan), start=1):
            print(f"  {number}. {step}")
        return None
    if aiplatform is None or storage is None:
        aiplatform, storage = default_clients()
    bucket_name, _, folder = plan.prefix.removeprefix("gs://").partition("/")
    bucket = storage.Client(project=plan.project).bucket(bucket_name)
    work = Path(tempfile.mkdtemp(prefix="vertex-"))

    for rel in tqdm(list(dataset.items["image"]), desc="uploading images", unit="img"):
        blob = bucket.blob(f"{folder}/{rel}")
        if not blob.exists():
            blob.upload_from_filename(str(dataset.root / rel))
    files = export_import_files(dataset, work, plan.prefix)
    bucket.blob(f"{folder}/import.jsonl").upload_from_filename(str(files["jsonl"]))

    aiplatform.init(project=plan.project, location=plan.location, staging_bucket=plan.bucket)
    vertex_dataset = aiplatform.ImageDataset.create(
        display_name=plan.name,
        gcs_source=[f"{plan.prefix}/import.jsonl"],
        import_schema_uri=aiplatform.schema.dataset.ioformat.image.multi_label_classification,
    )
    job = aiplatform.AutoMLImageTrainingJob(
        display_name=plan.name,
        prediction_type="classification",
        multi_label=True,
        model_type=MODEL_TYPES[plan.model_type],
    )
    model = job.run(
        dataset=vertex_dataset,
        budget_milli_node_hours=plan.budget_milli_node_hours,
        model_display_name=plan.name,
        training_filter_split=ML_USE_FILTER.format("training"),
        validation_filter_split=ML_USE_FILTER.format("validation"),
        test_filter_split=ML_USE_FILTER.format("test"),
    )

    instances = work / "batch_input.jsonl"
    instances.write_text(
        "".join(
            json.dumps({"content": f"{plan.prefix}/{rel}", "mimeType": "image/jpeg"}) + "\n"
            for rel in dataset.rows(EVAL_SPLITS)["image"]
        )
    )
    bucket.blob(f"{folder}/batch_input.jsonl").upload_from_filename(str(instances))
    batch = model.batch_predict(
        job_display_name=f"{plan.name}-valid-test",
        gcs_source=f"{plan.prefix}/batch_input.jsonl",
        gcs_destination_prefix=f"{plan.prefix}/predictions",
        sync=True,
    )
    downloaded = work / "predictions"
    downloaded.mkdir()
    for blob in batch.iter_outputs():
        if blob.name.endswith(".jsonl") and "prediction" in blob.name.rsplit("/", 1)[-1]:
            blob.download_to_filename(str(downloaded / blob.name.rsplit("/", 1)[-1]))
    return ingest_batch_predictions(downloaded, dataset, results, mapping_file=work / MAPPING_FILE)
