"""countTokens on both backends through the real google-genai SDK: deterministic, equal to the
promptTokenCount a job reports for the same request, 404 for an unknown model, 400 for a bad one."""

from __future__ import annotations

import json
import math
import urllib.request

import pytest
from emulator_helpers import wait_for_job
from google.genai import errors, types

pytestmark = pytest.mark.integration

PROMPT = "Summarize the quarterly report in three bullet points."
SYSTEM = "You are terse."


def expected_tokens(*texts: str) -> int:
    return max(1, math.ceil(sum(len(text) for text in texts) / 4))


@pytest.mark.parametrize("client_fixture", ["gemini_client", "vertex_client"])
def test_count_tokens_is_the_emulators_token_rule_and_the_same_every_time(client_fixture, request) -> None:
    client = request.getfixturevalue(client_fixture)
    counted = [client.models.count_tokens(model="gemini-2.5-flash", contents=PROMPT) for _ in range(2)]
    assert counted[0].total_tokens == counted[1].total_tokens == expected_tokens(PROMPT)
    if client_fixture == "vertex_client":
        with_system = client.models.count_tokens(
            model="gemini-2.5-flash",
            contents=PROMPT,
            config=types.CountTokensConfig(system_instruction=SYSTEM),
        )
        assert with_system.total_tokens == expected_tokens(PROMPT, SYSTEM)


def test_count_tokens_agrees_with_the_prompt_tokens_a_job_reports(gemini_client) -> None:
    counted = gemini_client.models.count_tokens(model="gemini-2.5-flash", contents=PROMPT).total_tokens
    job = gemini_client.batches.create(
        model="gemini-2.5-flash",
        src=[{"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}],
    )
    done = wait_for_job(gemini_client, job.name)
    [answer] = done.dest.inlined_responses
    assert answer.response.usage_metadata.prompt_token_count == counted


def test_vertex_counts_billable_characters_without_white_space(local_stack) -> None:
    # The SDK's CountTokensResponse drops totalBillableCharacters: read the wire.
    url = (
        f"{local_stack.gemini_url}/v1beta1/projects/{local_stack.project}/locations/{local_stack.location}"
        "/publishers/google/models/gemini-2.5-flash:countTokens"
    )
    body = {"contents": [{"role": "user", "parts": [{"text": "a b\tc\nd"}]}]}
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer local"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        counted = json.loads(response.read())
    assert counted == {
        "totalTokens": expected_tokens("a b\tc\nd"),
        "totalBillableCharacters": 4,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": expected_tokens("a b\tc\nd")}],
    }


def test_an_embedding_model_counts_its_text(gemini_client, vertex_client) -> None:
    assert gemini_client.models.count_tokens(model="gemini-embedding-001", contents=PROMPT).total_tokens == (
        expected_tokens(PROMPT)
    )
    assert vertex_client.models.count_tokens(model="text-embedding-005", contents=PROMPT).total_tokens == (
        expected_tokens(PROMPT)
    )


@pytest.mark.parametrize("client_fixture", ["gemini_client", "vertex_client"])
def test_an_unknown_model_is_a_404_and_an_empty_text_a_400(client_fixture, request) -> None:
    client = request.getfixturevalue(client_fixture)
    with pytest.raises(errors.ClientError) as unknown:
        client.models.count_tokens(model="gemini-9-ultra", contents=PROMPT)
    assert unknown.value.code == 404
    with pytest.raises(errors.ClientError) as blank:
        client.models.count_tokens(
            model="gemini-2.5-flash", contents=[{"role": "user", "parts": [{"text": " "}]}]
        )
    assert blank.value.code == 400
