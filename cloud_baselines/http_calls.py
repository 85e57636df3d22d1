"""Calls to hosted prediction endpoints: one image per request, every answer cached on disk by image hash,
so a rerun (or a crash halfway) never pays for the same image twice."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path

from tqdm.auto import tqdm

from benchmarks.atomic import atomic_write_json
from benchmarks.data.image_hashes import file_sha256
from benchmarks.data.paths import cache_dir
from benchmarks.errors import BenchmarkError

TIMEOUT_S = 60


def response_cache(service: str) -> Path:
    return cache_dir() / "responses" / service


def cached_responses(
    paths: list[Path], service: str, call: Callable[[bytes], dict], desc: str, variant: str
) -> list[dict]:
    """``call(image bytes)`` for each image not answered before; answers in ``paths`` order. ``variant``
    (endpoint, model, options) keys the cache too: a different model or option is a different answer."""
    folder = response_cache(service) / hashlib.sha256(variant.encode()).hexdigest()[:16]
    answers = []
    for path in tqdm(paths, desc=desc, unit="img"):
        cached = folder / f"{file_sha256(path)}.json"
        if cached.is_file():
            answers.append(json.loads(cached.read_text(encoding="utf-8")))
            continue
        answer = call(Path(path).read_bytes())
        atomic_write_json(cached, answer)
        answers.append(answer)
    return answers


def post_json(session, url: str, service: str, **kwargs) -> dict:
    """POST and return the JSON body; network and HTTP failures become one line naming the service."""
    import requests

    shown = re.sub(r"(api_key|key)=[^&]+", r"\1=…", url)
    try:
        reply = session.post(url, timeout=TIMEOUT_S, **kwargs)
    except requests.RequestException as exc:
        raise BenchmarkError(
            f"{service}: cannot reach {shown} ({exc.__class__.__name__}); check the network, or ingest saved "
            "responses instead"
        ) from None
    if reply.status_code != 200:
        try:
            body = reply.json()
            message = (
                body.get("error", {}).get("message")
                if isinstance(body.get("error"), dict)
                else body.get("error") or body.get("message")
            )
        except ValueError:
            message = reply.text[:200]
        hint = " (check the API key)" if reply.status_code in (401, 403) else ""
        raise BenchmarkError(f"{service}: HTTP {reply.status_code} from {shown}: {message}{hint}")
    try:
        return reply.json()
    except ValueError:
        raise BenchmarkError(f"{service}: {shown} answered with something that is not JSON") from None
