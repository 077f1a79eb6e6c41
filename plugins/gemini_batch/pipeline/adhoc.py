"""Prepare an ad-hoc batch (prompts typed in a form, or a JSONL file) for either backend.

The four ways in, each validated before anything is submitted:

========================  ===========================================================
prompts, Gemini API        inline requests (``{"contents", "config", "metadata"}``), or
                           with ``gemini_input="file"`` a JSONL uploaded to the Files API
prompts, Vertex AI         a Vertex JSONL written to ``gs://<bucket>/adhoc/<run>/``
gs:// file, Gemini API     ``{"key", "request"}`` lines, streamed from GCS to the Files API
gs:// file, Vertex AI      ``{"request"}`` lines with the key label, used in place
========================  ===========================================================

Invariants: keys of typed prompts are ``adhoc-<run tag>-<n>`` (unique per run, valid as Vertex
labels); a file is read as a stream (validation and upload), never whole; the returned
``input_keys`` say where the submitted keys are, for the loader's reconciliation; ``staged`` lists
exactly what this module wrote (a gs:// object, an uploaded ``files/...``), never the user's own
file, so :func:`delete_staged` can remove it when the run fails before any job exists.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from gemini_batch.backends import BACKENDS, Backend
from gemini_batch.pipeline.builder import RequestTemplate
from gemini_batch.pipeline.jsonl_scan import scan_gcs_jsonl, scan_jsonl
from gemini_batch.pipeline.limits import GEMINI_API_INLINE_LIMITS, GEMINI_API_LIMITS, VERTEX_LIMITS
from gemini_batch.pipeline.loader import InputKeys
from gemini_batch.pipeline.refs import GcsUri
from gemini_batch.pipeline.request_shape import validate_inline_requests

if TYPE_CHECKING:
    from google.cloud import storage
    from google.genai import Client as GenaiClient

__all__ = ["AdhocBatch", "delete_staged", "prepare_adhoc", "sdk_inline_request"]


@dataclass(frozen=True)
class AdhocBatch:
    """What the job task needs: its ``src`` and where the keys are.

    :param src: The operator's ``src``: inline requests, ``files/...`` or ``gs://...``.
    :param input_keys: :meth:`InputKeys.to_dict` of the submitted keys.
    :param requests: How many requests.
    :param staged: What preparing wrote (``gs://...`` objects, ``files/...`` uploads), to delete if
        the run fails before any job exists.
    """

    src: Any
    input_keys: dict[str, Any]
    requests: int
    staged: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "src": self.src,
            "input_keys": self.input_keys,
            "requests": self.requests,
            "staged": list(self.staged),
        }


def sdk_inline_request(request: Mapping[str, Any], key: str) -> dict[str, Any]:
    """A REST GenerateContentRequest as the SDK's inline request: ``contents``, ``config``, ``metadata``.

    The SDK's ``GenerateContentConfig`` takes ``generationConfig``'s fields at its top level,
    next to ``systemInstruction``, ``safetySettings``, ``tools`` and ``toolConfig``.
    """
    fields = dict(request)
    contents = fields.pop("contents")
    config: dict[str, Any] = {}
    for name in ("generationConfig", "generation_config"):
        config.update(fields.pop(name, {}) or {})
    fields.pop("labels", None)  # the Gemini API has no request labels: the key is metadata
    config.update(fields)
    return {"contents": contents, "config": config, "metadata": {"key": key}}


def _jsonl(lines: Sequence[Mapping[str, Any]]) -> bytes:
    return b"".join(json.dumps(line, separators=(",", ":")).encode("utf-8") + b"\n" for line in lines)


def prepare_adhoc(
    *,
    backend: Backend,
    template: RequestTemplate,
    tag: str,
    prompts: Sequence[str] | None = None,
    input_file: str | None = None,
    gemini_input: Literal["inline", "file"] = "inline",
    bucket: str | None = None,
    storage_client: storage.Client | None = None,
    genai_client: GenaiClient | None = None,
) -> AdhocBatch:
    """Validate and stage one ad-hoc batch; nothing is submitted here.

    :param backend: Required. ``vertex`` or ``gemini_api``.
    :param template: Required. The request template (the form's temperature already applied).
    :param tag: Required. A short run tag (keys and paths are unique per run).
    :param prompts: The prompts (one request each), or None with ``input_file``.
    :param input_file: ``gs://...jsonl`` of requests in the backend's format, instead of prompts.
    :param gemini_input: For prompts on the Gemini API: ``inline`` (up to 20 MB) or ``file``.
    :param bucket: The bucket for a Vertex JSONL built from prompts.
    :raises InputValidationError: A bad prompt list or file (file and line named).
    :raises ValueError: Neither or both of prompts and input_file.
    """
    prompts = [p for p in (prompts or []) if p and p.strip()]
    if bool(prompts) == bool(input_file):
        raise ValueError("give either prompts or input_file (a gs:// JSONL of requests), not both or neither")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")

    if input_file:
        input_format = "vertex_jsonl" if backend == "vertex" else "gemini_jsonl"
        limits = VERTEX_LIMITS if backend == "vertex" else GEMINI_API_LIMITS
        scan = scan_gcs_jsonl(
            input_file,
            storage_client=_need(storage_client, "storage_client"),
            input_format=input_format,
            limits=limits,
        )
        keys = InputKeys.from_gcs(input_file).to_dict()
        if backend == "vertex":
            return AdhocBatch(input_file, keys, scan.requests)
        ref = GcsUri.parse(input_file)
        blob = _need(storage_client, "storage_client").bucket(ref.bucket).blob(ref.name)
        with blob.open("rb") as stream:  # seekable, streamed in chunks by the upload
            name = _upload(_need(genai_client, "genai_client"), stream, f"adhoc-{tag}")
        return AdhocBatch(name, keys, scan.requests, staged=(name,))

    keyed = [(f"adhoc-{tag}-{index:05d}", prompt) for index, prompt in enumerate(prompts)]
    keys = InputKeys.from_keys([key for key, _ in keyed]).to_dict()
    if backend == "vertex":
        if not bucket:
            raise ValueError("a bucket is needed to write the Vertex AI JSONL of the prompts")
        target = GcsUri(bucket, f"adhoc/{tag}/requests.jsonl")
        data = _jsonl([{"request": template.render(prompt, key=key)} for key, prompt in keyed])
        scan_jsonl(io.BytesIO(data), source=str(target))
        blob = _need(storage_client, "storage_client").bucket(bucket).blob(target.name)
        with blob.open("wb", ignore_flush=True) as writer:
            writer.write(data)
        return AdhocBatch(str(target), keys, len(keyed), staged=(str(target),))
    if gemini_input == "file":
        data = _jsonl([{"key": key, "request": template.render(prompt)} for key, prompt in keyed])
        scan_jsonl(
            io.BytesIO(data),
            source=f"adhoc-{tag}.jsonl",
            input_format="gemini_jsonl",
            limits=GEMINI_API_LIMITS,
        )
        name = _upload(_need(genai_client, "genai_client"), io.BytesIO(data), f"adhoc-{tag}")
        return AdhocBatch(name, keys, len(keyed), staged=(name,))
    rest = [{"request": template.render(prompt), "metadata": {"key": key}} for key, prompt in keyed]
    validate_inline_requests(rest, limits=GEMINI_API_INLINE_LIMITS)
    return AdhocBatch(
        [sdk_inline_request(item["request"], key) for item, (key, _) in zip(rest, keyed, strict=False)],
        keys,
        len(keyed),
    )


def _upload(client: GenaiClient, stream: Any, display_name: str) -> str:
    """Upload a JSONL stream to the Files API (resumable, in chunks); return ``files/...``."""
    uploaded = client.files.upload(file=stream, config={"mime_type": "jsonl", "display_name": display_name})
    return str(uploaded.name)


def delete_staged(
    staged: Sequence[str],
    *,
    storage_client: storage.Client | None = None,
    genai_client: GenaiClient | None = None,
) -> list[str]:
    """Delete what :func:`prepare_adhoc` staged; what is gone already counts as deleted.

    :return: the names deleted (or found gone), in order.
    """
    from gemini_batch.api_errors import error_kind

    deleted = []
    for name in staged:
        try:
            if name.startswith("gs://"):
                ref = GcsUri.parse(name)
                _need(storage_client, "storage_client").bucket(ref.bucket).blob(ref.name).delete()
            elif name.startswith("files/"):
                _need(genai_client, "genai_client").files.delete(name=name)
            else:
                raise ValueError(f"not a staged input: {name!r}")
        except Exception as exc:
            if error_kind(exc) != "not_found":
                raise
        deleted.append(name)
    return deleted


def _need(value: Any, name: str) -> Any:
    if value is None:
        raise ValueError(f"{name} is required for this ad-hoc input")
    return value
