"""run.json as one typed record: the fields every reader relies on, checked when a run is read and again before
every update is written, so no run.json that readers would refuse is ever written. Fields this release does not
name are kept as they are (a newer release's run still reads)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from benchmarks.errors import RunError

Status = Literal["running", "done", "failed", "interrupted"]
TRAIN_LOSS, VALID_LOSS = "train_loss", "valid_loss"  # every trainer's history rows name their losses so (fastai's own)
KERAS_LOSS_NAMES = {"loss": TRAIN_LOSS, "val_loss": VALID_LOSS}  # Keras' log names: mapped on write, and on read


def shared_loss_names(row: dict) -> dict:
    """A history row (or Keras' epoch logs) with the losses under the shared names; Keras runs written before
    2026-12-05 kept Keras' names, and read the same."""
    return {KERAS_LOSS_NAMES.get(name, name): value for name, value in row.items()}


class Record(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class DatasetRef(Record):
    """The dataset the run was made on: its content fingerprint is what every comparison checks."""

    name: str = ""
    path: str = ""
    fingerprint: str | None = None


class Progress(Record):
    """The last finished epoch: where ``--resume`` picks up."""

    phase: Literal["frozen", "unfrozen"]
    epoch: int = Field(ge=0)


class RunRecord(Record):
    run_id: str
    kind: str
    labels: list[str] = Field(min_length=1)
    dataset: DatasetRef
    status: Status
    backbone: str | None = None
    params: dict = Field(default_factory=dict)
    timings: dict = Field(default_factory=dict)
    model: dict = Field(default_factory=dict)
    environment: dict = Field(default_factory=dict)
    history: list[dict] = Field(default_factory=list)
    progress: Progress | None = None


def checked_record(info: dict, run_json: Path) -> dict:
    """``info`` if it is a valid run record; else one ``RunError`` naming the file, the field and what is wrong."""
    try:
        RunRecord.model_validate(info)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "(the record)"
        raise RunError(f"{run_json}: field '{field}': {error['msg']}") from None
    return info
