"""The models lookups google-genai's ``client.models.get`` makes, for both backends.

- Gemini API: ``GET /{v}/models/{model}`` answers a ``Model`` resource (name, baseModelId, version,
  token limits, supportedGenerationMethods including ``batchGenerateContent``); an unknown id is a
  404 NOT_FOUND, as the real API answers it.
- Vertex AI: ``GET /{v}/publishers/google/models/{model}`` (the SDK does not scope base-model gets
  to a project) answers a ``PublisherModel``; an unknown id is a 404 NOT_FOUND.

Which ids exist is the emulator's own catalogue (:func:`model.is_known_model` and, for the embedding
models, :data:`embedding.EMBEDDING_MODELS`), never the product's.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .api_common import endpoint, json_response
from .embedding import embedding_model
from .errors import not_found
from .model import is_known_model

#: The published limits of the current Gemini models (ai.google.dev/gemini-api/docs/models).
INPUT_TOKEN_LIMIT = 1_048_576
OUTPUT_TOKEN_LIMIT = 65_536
GENERATION_METHODS = ("generateContent", "countTokens", "createCachedContent", "batchGenerateContent")
#: What an embedding model supports (gemini-embedding-001's published Model resource).
EMBEDDING_METHODS = ("embedContent", "countTextTokens", "countTokens", "asyncBatchEmbedContent")


def gemini_model(model_id: str) -> dict[str, Any]:
    """The Gemini API's ``Model`` resource for a known id (generative or embedding)."""
    embedder = embedding_model(model_id, "gemini_api")
    if embedder is not None:
        return {
            "name": f"models/{model_id}",
            "version": "001",
            "displayName": model_id.replace("-", " ").title(),
            "description": f"{model_id} (served by the local emulator)",
            "inputTokenLimit": embedder.input_token_limit,
            "outputTokenLimit": 1,
            "supportedGenerationMethods": list(EMBEDDING_METHODS),
        }
    return {
        "name": f"models/{model_id}",
        "baseModelId": model_id,
        "version": "001",
        "displayName": model_id.replace("-", " ").title(),
        "description": f"{model_id} (served by the local emulator)",
        "inputTokenLimit": INPUT_TOKEN_LIMIT,
        "outputTokenLimit": OUTPUT_TOKEN_LIMIT,
        "supportedGenerationMethods": list(GENERATION_METHODS),
        "temperature": 1,
        "topP": 0.95,
        "topK": 64,
        "maxTemperature": 2,
        "thinking": True,
    }


def vertex_publisher_model(model_id: str) -> dict[str, Any]:
    """Vertex AI's ``PublisherModel`` resource for a known id."""
    return {
        "name": f"publishers/google/models/{model_id}",
        "versionId": "default",
        "openSourceCategory": "PROPRIETARY",
        "launchStage": "GA",
        "publisherModelTemplate": f"projects/{{project}}/locations/{{location}}/publishers/google/models/{model_id}",
    }


@endpoint("gemini", inject=False)
async def get_gemini_model(request: web.Request) -> web.Response:
    """``GET /{v}/models/{model}``."""
    model_id = request.match_info["model"]
    if not (is_known_model(model_id) or embedding_model(model_id, "gemini_api")):
        version = request.match_info["version"]
        raise not_found(
            f"models/{model_id} is not found for API version {version}, or is not supported for "
            "GET. Call ListModels to see the list of available models and their supported methods."
        )
    return json_response(gemini_model(model_id))


@endpoint("vertex", inject=False)
async def get_vertex_model(request: web.Request) -> web.Response:
    """``GET /{v}/publishers/google/models/{model}``."""
    model_id = request.match_info["model"]
    if not (is_known_model(model_id) or embedding_model(model_id, "vertex")):
        raise not_found(f"Publisher Model `publishers/google/models/{model_id}` not found.")
    return json_response(vertex_publisher_model(model_id))


def add_routes(app: web.Application) -> None:
    """Register the models routes of both backends."""
    app.router.add_get(r"/{version:v1|v1beta1}/publishers/google/models/{model}", get_vertex_model)
    app.router.add_get(r"/{version:v1|v1beta|v1alpha}/models/{model}", get_gemini_model)
