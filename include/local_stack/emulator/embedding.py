"""The local embedding model: deterministic vectors of each embedding model's dimension.

Invariants: the same (model id, text, task type, title) always gives the same vector, byte for
byte, in every process; a full-size vector has unit length; a reduced ``outputDimensionality``
is the full vector's prefix ("truncated from the end", as Google documents it), so it is *not*
renormalized, as with the real models. Nothing here touches the network, the clock or global
state. A request the real API would reject row by row raises :class:`model.InvalidRequest`.

Two request shapes, one model:

- Gemini API ``EmbedContentRequest`` (``asyncBatchEmbedContent`` inline requests and file
  lines): ``content`` (a ``Content``; its text parts are embedded), ``taskType``, ``title``,
  ``outputDimensionality``, ``embedContentConfig`` (the same three, newer spelling), ``model``;
  the answer is an ``EmbedContentResponse``: ``{"embedding": {"values"}, "usageMetadata":
  {"promptTokenCount"}}``.
- Vertex AI text-embedding instances (``batchPredictionJobs`` JSONL lines and BigQuery rows):
  ``{"content": str, "task_type"?, "title"?}``; the answer is one prediction ``{"embeddings":
  {"statistics": {"token_count", "truncated"}, "values"}}``, with the job's
  ``modelParameters`` (``outputDimensionality``, ``autoTruncate``) applied.

Token counts are ceil(characters / 4), at least 1, as for the generative model.
"""

from __future__ import annotations

import hashlib
import math
import struct
from array import array
from dataclasses import dataclass
from typing import Any

from .model import InvalidRequest, camel_name, check_fields, check_parts, text_parts


@dataclass(frozen=True)
class EmbeddingModel:
    """What the emulator knows of one embedding model.

    :param dimension: Required. The full (default) vector length.
    :param backends: Required. The APIs that serve it.
    :param input_token_limit: Optional. Longest input in tokens (longer inputs are truncated
        or refused, see :func:`vertex_prediction`).
    """

    dimension: int
    backends: frozenset[str]
    input_token_limit: int = 2048


#: Embedding models and where they exist (Gemini API ``models/<id>``, Vertex
#: ``publishers/google/models/<id>``). Dimensions are the published defaults: gemini-embedding
#: 3072 (reducible with outputDimensionality), the text-embedding family 768.
EMBEDDING_MODELS: dict[str, EmbeddingModel] = {
    "gemini-embedding-001": EmbeddingModel(3072, frozenset({"vertex", "gemini_api"})),
    "gemini-embedding-2": EmbeddingModel(3072, frozenset({"gemini_api"}), input_token_limit=8192),
    "text-embedding-005": EmbeddingModel(768, frozenset({"vertex"})),
    "text-embedding-004": EmbeddingModel(768, frozenset({"vertex"})),
    "text-multilingual-embedding-002": EmbeddingModel(768, frozenset({"vertex"})),
}

#: ``TaskType`` values of the Gemini API's EmbedContentRequest (Vertex accepts the same names).
TASK_TYPES = frozenset(
    {
        "TASK_TYPE_UNSPECIFIED",
        "RETRIEVAL_QUERY",
        "RETRIEVAL_DOCUMENT",
        "SEMANTIC_SIMILARITY",
        "CLASSIFICATION",
        "CLUSTERING",
        "QUESTION_ANSWERING",
        "FACT_VERIFICATION",
        "CODE_RETRIEVAL_QUERY",
    }
)

#: Fields of a Gemini API ``EmbedContentRequest`` and its ``EmbedContentConfig`` (JSON names;
#: snake_case accepted too), as the API reference lists them.
EMBED_REQUEST_FIELDS = frozenset(
    {"model", "content", "taskType", "title", "outputDimensionality", "embedContentConfig"}
)
EMBED_CONFIG_FIELDS = frozenset(
    {"taskType", "title", "outputDimensionality", "autoTruncate", "documentOcr", "audioTrackExtraction"}
)
#: Fields of a Vertex text-embedding instance.
VERTEX_INSTANCE_FIELDS = frozenset({"content", "task_type", "title"})

_VALUES_PER_BLOCK = 8  # one sha256 digest gives eight 32-bit numbers


def embedding_model(model_id: str, backend: str) -> EmbeddingModel | None:
    """The embedding model ``model_id`` as ``backend`` serves it, or None."""
    found = EMBEDDING_MODELS.get(model_id)
    return found if found is not None and backend in found.backends else None


def tokens(text: str) -> int:
    """The emulator's token count of ``text``: ceil(characters / 4), at least 1."""
    return max(1, math.ceil(len(text) / 4))


def embedding_values(model_id: str, text: str, *, task_type: str = "", title: str = "") -> list[float]:
    """The full-size, unit-length vector of ``text`` for ``model_id`` (a known embedding model).

    Each component comes from sha256 of the inputs and the block index (counter mode), mapped
    to [-1, 1); the vector is then scaled to length 1 and rounded to float32 precision.
    """
    dimension = EMBEDDING_MODELS[model_id].dimension
    seed = f"{model_id}\n{task_type}\n{title}\n{text}".encode()
    blocks = math.ceil(dimension / _VALUES_PER_BLOCK)
    stream = b"".join(hashlib.sha256(seed + block.to_bytes(4, "big")).digest() for block in range(blocks))
    raw = [number / 2**31 - 1.0 for number in struct.unpack(f">{dimension}I", stream[: dimension * 4])]
    norm = math.sqrt(math.fsum(value * value for value in raw)) or 1.0
    return array("f", [value / norm for value in raw]).tolist()  # float32, as the API sends


def _dimension(value: Any, model: EmbeddingModel, field: str) -> int:
    """A requested ``outputDimensionality`` (None -> the full dimension); a row error if invalid."""
    if value is None:
        return model.dimension
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"Invalid value at '{field}' ({type(value).__name__}), expected an integer.")
    if not 1 <= value <= model.dimension:
        raise InvalidRequest(
            f"* {field}: output_dimensionality must be between 1 and {model.dimension}, got {value}."
        )
    return value


def _task_type(value: Any, field: str) -> str:
    if value is None:
        return ""
    if value not in TASK_TYPES:
        raise InvalidRequest(f"Invalid value at '{field}' ({value!r}): not a TaskType.")
    return "" if value == "TASK_TYPE_UNSPECIFIED" else value


def _camel_fields(value: dict[str, Any], known: frozenset[str], path: str) -> dict[str, Any]:
    """``value`` with camelCase keys; an unknown field is a row error in the real wording."""
    fields: dict[str, Any] = {}
    for key, item in value.items():
        name = camel_name(key)
        if name not in known:
            where = f" at '{path}'" if path else ""
            raise InvalidRequest(
                f'Invalid JSON payload received. Unknown name "{key}"{where}: Cannot find field.'
            )
        fields[name] = item
    return fields


def embed_content(model_id: str, request: Any) -> dict[str, Any]:
    """The Gemini API ``EmbedContentResponse`` for one ``EmbedContentRequest``.

    :raises InvalidRequest: the request is not an object, has an unknown field, names another
        model, has no content or no text, or an out-of-range ``outputDimensionality`` or an
        unknown ``taskType``.
    """
    model = EMBEDDING_MODELS[model_id]
    if not isinstance(request, dict):
        raise InvalidRequest(
            f"Invalid JSON payload: the request must be a JSON object, got {type(request).__name__}."
        )
    fields = _camel_fields(request, EMBED_REQUEST_FIELDS, "")
    config = fields.get("embedContentConfig") or {}
    if not isinstance(config, dict):
        raise InvalidRequest("Invalid value at 'embed_content_config': expected an object.")
    config = _camel_fields(config, EMBED_CONFIG_FIELDS, "embed_content_config")
    named = fields.get("model")
    if named is not None and named != f"models/{model_id}":
        raise InvalidRequest(
            f"* EmbedContentRequest.model: the model of each request must be the batch's model "
            f"models/{model_id}, got {named!r}."
        )
    content = fields.get("content")
    if not isinstance(content, dict) or not content.get("parts"):
        raise InvalidRequest("* EmbedContentRequest.content: content is not specified")
    check_fields("Content", content, "content")
    if not isinstance(content["parts"], list):
        raise InvalidRequest("Invalid JSON payload: EmbedContentRequest.content.parts must be a list.")
    check_parts(content["parts"], "content")
    text = " ".join(text_parts(content))
    if not text:
        raise InvalidRequest("* EmbedContentRequest.content: the content has no text part to embed.")
    task_type = _task_type(config.get("taskType", fields.get("taskType")), "task_type")
    title = config.get("title", fields.get("title")) or ""
    dimension = _dimension(
        config.get("outputDimensionality", fields.get("outputDimensionality")), model, "output_dimensionality"
    )
    values = embedding_values(model_id, text, task_type=task_type, title=str(title))
    return {"embedding": {"values": values[:dimension]}, "usageMetadata": {"promptTokenCount": tokens(text)}}


@dataclass(frozen=True)
class VertexParameters:
    """A Vertex embedding job's ``modelParameters``.

    :param output_dimensionality: Optional. Vector length (None: the model's full dimension).
    :param auto_truncate: Optional. Cut inputs above the token limit (True, the default) or
        fail those rows (False).
    """

    output_dimensionality: int | None = None
    auto_truncate: bool = True


def vertex_parameters(model_id: str, parameters: Any) -> VertexParameters:
    """The job's ``modelParameters`` checked for ``model_id``.

    :raises InvalidRequest: not an object, an unknown key, or a value of the wrong type or range
        (the create call answers 400 with the message).
    """
    if parameters is None:
        return VertexParameters()
    if not isinstance(parameters, dict):
        raise InvalidRequest("Field: batch_prediction_job.model_parameters Error: must be an object.")
    fields = _camel_fields(
        parameters, frozenset({"outputDimensionality", "autoTruncate"}), "model_parameters"
    )
    auto_truncate = fields.get("autoTruncate", True)
    if not isinstance(auto_truncate, bool):
        raise InvalidRequest(
            "Field: batch_prediction_job.model_parameters.autoTruncate Error: must be a boolean."
        )
    dimension = fields.get("outputDimensionality")
    if dimension is not None:
        _dimension(dimension, EMBEDDING_MODELS[model_id], "model_parameters.output_dimensionality")
    return VertexParameters(output_dimensionality=dimension, auto_truncate=auto_truncate)


def vertex_prediction(model_id: str, instance: Any, parameters: VertexParameters) -> dict[str, Any]:
    """The one prediction of a Vertex text-embedding instance: ``{"embeddings": {"statistics":
    {"token_count", "truncated"}, "values"}}``.

    :raises InvalidRequest: the instance is not an object, has an unknown field, has no
        non-blank ``content`` string, an unknown ``task_type``, or is over the model's token
        limit with ``autoTruncate`` false.
    """
    model = EMBEDDING_MODELS[model_id]
    if not isinstance(instance, dict):
        raise InvalidRequest(f"The instance must be a JSON object, got {type(instance).__name__}.")
    unknown = sorted(set(instance) - VERTEX_INSTANCE_FIELDS)
    if unknown:
        raise InvalidRequest(
            f'Invalid JSON payload received. Unknown name "{unknown[0]}": Cannot find field.'
        )
    content = instance.get("content")
    if not isinstance(content, str) or not content.strip():
        raise InvalidRequest('The instance needs a non-empty "content" string to embed.')
    task_type = _task_type(instance.get("task_type"), "task_type")
    count = tokens(content)
    truncated = count > model.input_token_limit
    if truncated and not parameters.auto_truncate:
        raise InvalidRequest(
            f"The input has {count} tokens, more than the {model.input_token_limit} that {model_id} "
            "accepts; set autoTruncate to true or shorten it."
        )
    if truncated:
        content, count = content[: model.input_token_limit * 4], model.input_token_limit
    values = embedding_values(model_id, content, task_type=task_type, title=str(instance.get("title") or ""))
    dimension = parameters.output_dimensionality or model.dimension
    return {
        "embeddings": {
            "statistics": {"token_count": count, "truncated": truncated},
            "values": values[:dimension],
        }
    }
