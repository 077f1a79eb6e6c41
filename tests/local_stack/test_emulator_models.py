"""The models lookups (``client.models.get``) through the unmodified SDK, on both backends."""

from __future__ import annotations

import pytest
from google.genai import errors

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("backend", ["gemini_client", "vertex_client"])
def test_a_known_model_is_found(request: pytest.FixtureRequest, backend: str) -> None:
    client = request.getfixturevalue(backend)
    model = client.models.get(model="gemini-2.5-flash")
    assert model.name.endswith("models/gemini-2.5-flash")


def test_the_gemini_api_model_says_it_serves_batches(gemini_client) -> None:
    model = gemini_client.models.get(model="gemini-2.5-flash")
    assert "batchGenerateContent" in model.supported_actions
    assert model.input_token_limit == 1_048_576 and model.output_token_limit == 65_536


@pytest.mark.parametrize("backend", ["gemini_client", "vertex_client"])
@pytest.mark.parametrize("model", ["gemini-2.5-flsh", "gpt-4o"])
def test_an_unknown_model_is_not_found(request: pytest.FixtureRequest, backend: str, model: str) -> None:
    client = request.getfixturevalue(backend)
    with pytest.raises(errors.ClientError) as raised:
        client.models.get(model=model)
    assert raised.value.code == 404 and model in str(raised.value)


def test_a_models_lookup_needs_the_api_key(local_stack) -> None:
    from conftest import make_gemini_client

    client = make_gemini_client(local_stack, api_key="wrong-key")  # a reference keeps it open
    with pytest.raises(errors.ClientError) as raised:
        client.models.get(model="gemini-2.5-flash")
    assert raised.value.code == 400


def test_the_vertex_answer_fits_the_publisher_model_schema() -> None:
    from discovery import problems

    from local_stack.emulator.api_models import vertex_publisher_model

    assert problems(vertex_publisher_model("gemini-2.5-flash"), "GoogleCloudAiplatformV1PublisherModel") == []
