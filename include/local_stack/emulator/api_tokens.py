"""``models.countTokens`` for both backends, deterministic and equal to what a job reports.

- Gemini API: ``POST /{v}/models/{model}:countTokens`` with ``{"contents": [...]}`` (what
  google-genai sends) or ``{"generateContentRequest": {...}}``; answers ``{"totalTokens",
  "promptTokensDetails"}``.
- Vertex AI: ``POST /{v}/projects/{p}/locations/{l}/publishers/google/models/{model}:countTokens``
  with the request's ``contents`` (and ``systemInstruction``); answers ``{"totalTokens",
  "totalBillableCharacters", "promptTokensDetails"}``.

The count is the emulator's one token rule: a generative model's is the ``promptTokenCount`` a
job reports for the same request (:func:`model.prompt_tokens`), an embedding model's the
``promptTokenCount`` of its embedding (:func:`embedding.tokens` of the text). Billable characters
are Vertex AI's: the text's characters without white space. An unknown model is a 404 and an
unusable request a 400 with the real services' wording, as for batches.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .api_common import endpoint, json_body, json_response
from .embedding import embedding_model, tokens
from .errors import invalid_argument, not_found
from .model import InvalidRequest, is_known_model, prompt_tokens, text_parts, validate_request


def count(model_id: str, backend: str, request: dict[str, Any]) -> dict[str, Any]:
    """The CountTokensResponse (camelCase) of ``request`` for a known ``model_id`` on ``backend``."""
    try:
        validate_request(request)
    except InvalidRequest as error:
        raise invalid_argument(str(error)) from error
    texts = [text for content in request.get("contents") or [] for text in text_parts(content)]
    system = request.get("systemInstruction", request.get("system_instruction"))
    texts += text_parts(system)
    if embedding_model(model_id, backend) is not None:
        total = tokens(" ".join(texts))
    else:
        total = prompt_tokens(request)
    answer: dict[str, Any] = {
        "totalTokens": total,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": total}],
    }
    if backend == "vertex":
        answer["totalBillableCharacters"] = sum(len("".join(text.split())) for text in texts)
    return answer


@endpoint("gemini")
async def count_gemini_tokens(request: web.Request) -> web.Response:
    """``POST /{v}/models/{model}:countTokens``."""
    model_id = request.match_info["model"].rpartition(":")[0]
    if not (is_known_model(model_id) or embedding_model(model_id, "gemini_api")):
        version = request.match_info["version"]
        raise not_found(
            f"models/{model_id} is not found for API version {version}, or is not supported for "
            "countTokens. Call ListModels to see the list of available models and their supported methods."
        )
    body = await json_body(request)
    inner = body.get("generateContentRequest") if isinstance(body, dict) else None
    return json_response(count(model_id, "gemini_api", inner if isinstance(inner, dict) else body))


@endpoint("vertex")
async def count_vertex_tokens(request: web.Request) -> web.Response:
    """``POST /{v}/projects/{p}/locations/{l}/publishers/google/models/{model}:countTokens``."""
    model_id, _, method = request.match_info["model"].rpartition(":")
    if method != "countTokens":
        raise not_found(f"Method {method!r} is not found for publishers/google/models/{model_id}.")
    if not (is_known_model(model_id) or embedding_model(model_id, "vertex")):
        raise not_found(f"Publisher Model `publishers/google/models/{model_id}` not found.")
    return json_response(count(model_id, "vertex", await json_body(request)))


def add_routes(app: web.Application) -> None:
    """Register the Vertex countTokens route (the Gemini API's shares the batch create route)."""
    app.router.add_post(
        r"/{version:v1|v1beta1}/projects/{project}/locations/{location}/publishers/google/models/{model}",
        count_vertex_tokens,
    )
