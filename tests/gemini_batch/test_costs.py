"""The price table, costs and the estimate before submit: tables of cases checked by hand."""

from __future__ import annotations

import json

import pytest

from gemini_batch.costs import (
    PriceTable,
    Usage,
    batch_cost,
    budget_verdict,
    by_tier,
    cost_of,
    estimate,
    estimate_request,
    load_prices,
    max_output_tokens,
    model_id,
    shipped_prices,
    tier_of,
)

TABLE = load_prices()


def test_shipped_table_names_its_source_date_and_batch_discount():
    data = shipped_prices()
    assert data["source"].startswith("https://ai.google.dev/gemini-api/docs/pricing")
    assert data["retrieved"] == TABLE.retrieved and TABLE.retrieved[:4] == "2026"
    assert TABLE.batch_discount == 0.5
    assert TABLE.per_tokens == 1_000_000


@pytest.mark.parametrize(
    ("model", "backend", "listed"),
    [
        ("gemini-2.5-flash", "gemini_api", "gemini-2.5-flash"),
        ("models/gemini-2.5-flash", "gemini_api", "gemini-2.5-flash"),
        ("publishers/google/models/gemini-2.5-pro", "vertex", "gemini-2.5-pro"),
        ("gemini-2.5-flash-lite", "vertex", "gemini-2.5-flash-lite"),  # longest prefix, not flash
        ("gemini-2.0-flash-001", "vertex", "gemini-2.0-flash"),
        ("gemini-2.0-flash-lite-001", "gemini_api", "gemini-2.0-flash-lite"),
        ("gemini-2.5-flashy", "vertex", None),  # a prefix must end at a '-'
        ("gemini-9-ultra", "vertex", None),
        ("", "vertex", None),
        (None, "vertex", None),
        ("gemini-2.5-flash", "other_backend", None),
    ],
)
def test_lookup(model, backend, listed):
    prices = TABLE.lookup(model, backend)
    assert (prices.model if prices else None) == listed


def test_backends_may_differ():
    assert TABLE.lookup("gemini-2.0-flash", "gemini_api").standard.input == 0.1
    assert TABLE.lookup("gemini-2.0-flash", "vertex").standard.input == 0.15


@pytest.mark.parametrize(
    ("model", "prompt", "tier"),
    [
        ("gemini-2.5-pro", 200_000, "standard"),
        ("gemini-2.5-pro", 200_001, "long"),
        ("gemini-2.5-flash", 900_000, "standard"),  # one tier
    ],
)
def test_tier_of(model, prompt, tier):
    assert tier_of(TABLE.lookup(model, "vertex"), prompt) == tier


# Checked by hand: batch = half the list price; USD per 1M tokens.
@pytest.mark.parametrize(
    ("model", "backend", "usage", "usd"),
    [
        # 1M prompt x 0.30 + 1M output x 2.50 = 2.80, half: 1.40
        ("gemini-2.5-flash", "gemini_api", {"standard": Usage(1_000_000, 1_000_000, 0)}, 1.40),
        # thinking at the output price: 2M x 2.50 / 2 = 2.50
        ("gemini-2.5-flash", "vertex", {"standard": Usage(0, 0, 2_000_000)}, 2.50),
        # pro standard: 1000 x 1.25 + 500 x 10 = 6250 per 1M -> 0.00625, half 0.003125
        ("gemini-2.5-pro", "vertex", {"standard": Usage(1000, 500, 0)}, 0.003125),
        # pro long: 300k x 2.50 + 1000 x 15 = 765,000 per 1M -> 0.765, half 0.3825
        ("gemini-2.5-pro", "gemini_api", {"long": Usage(300_000, 1000, 0)}, 0.3825),
        # both tiers: 0.003125 + 0.3825
        (
            "gemini-2.5-pro",
            "vertex",
            {"standard": Usage(1000, 500, 0), "long": Usage(300_000, 1000, 0)},
            0.385625,
        ),
        # flash-lite on Vertex: 10M x 0.10 + 1M x 0.40 = 1.40, half 0.70
        ("gemini-2.5-flash-lite", "vertex", {"standard": Usage(10_000_000, 1_000_000, 0)}, 0.70),
    ],
)
def test_batch_cost(model, backend, usage, usd):
    assert batch_cost(TABLE, TABLE.lookup(model, backend), usage) == pytest.approx(usd, rel=1e-12)


def test_by_tier_puts_each_request_in_its_own_tier():
    prices = TABLE.lookup("gemini-2.5-pro", "vertex")
    sums = by_tier(prices, [Usage(10, 1, 0), Usage(250_000, 2, 3), Usage(20, 4, 5)])
    assert sums == {"standard": Usage(30, 5, 5), "long": Usage(250_000, 2, 3)}


def test_cost_of_unknown_model_is_none_not_zero():
    cost = cost_of(TABLE, "my-tuned-model", "vertex", {"standard": Usage(5, 5, 0)})
    assert cost.usd is None and cost.tokens == Usage(5, 5, 0)
    known = cost_of(TABLE, "models/gemini-2.5-flash", "gemini_api", {"standard": Usage(1_000_000, 0, 0)})
    assert known.as_dict() == {
        "tokens": {"prompt": 1_000_000, "output": 0, "thinking": 0, "total": 1_000_000},
        "usd": 0.15,
        "model": "gemini-2.5-flash",
        "prices_model": "gemini-2.5-flash",
        "prices_retrieved": TABLE.retrieved,
    }


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        ({"promptTokenCount": 7, "candidatesTokenCount": 3, "totalTokenCount": 10}, Usage(7, 3, 0)),
        ({"promptTokenCount": 7, "candidatesTokenCount": 3, "totalTokenCount": 25}, Usage(7, 3, 15)),
        (
            {
                "promptTokenCount": 7,
                "candidatesTokenCount": 3,
                "thoughtsTokenCount": 4,
                "totalTokenCount": 99,
            },
            Usage(7, 3, 4),
        ),
        ({"prompt_token_count": 2, "candidates_token_count": 1, "total_token_count": 4}, Usage(2, 1, 1)),
        ({"promptTokenCount": 7, "candidatesTokenCount": 3}, Usage(7, 3, 0)),  # no total: not negative
        (None, Usage()),
    ],
)
def test_usage_from_usage_metadata(usage, expected):
    assert Usage.from_usage_metadata(usage) == expected


def test_overrides_merge_key_by_key_later_wins():
    table = load_prices(
        json.dumps({"batch_discount": 0.4, "models": {"gemini-2.5-flash": {"vertex": {"input": 1.0}}}}),
        {"models": {"my-model": {"vertex": {"input": 2.0, "output": 4.0}}}},
        None,
    )
    assert table.batch_discount == 0.4
    flash = table.lookup("gemini-2.5-flash", "vertex")
    assert (flash.standard.input, flash.standard.output) == (1.0, 2.5)  # output kept from the shipped table
    mine = table.lookup("my-model", "vertex")
    assert (mine.standard.thinking, mine.long) == (4.0, None)  # thinking defaults to the output price
    assert table.lookup("gemini-2.5-flash", "gemini_api").standard.input == 0.3


@pytest.mark.parametrize(
    "override",
    ["not json", "[1]", {"batch_discount": 1.0}, {"models": {"m": {"vertex": {"input": 1}}}}],
)
def test_bad_override_is_a_value_error(override):
    with pytest.raises(ValueError):
        load_prices(override)


def test_price_table_from_mapping_requires_models():
    with pytest.raises(ValueError, match="malformed"):
        PriceTable.from_mapping({"batch_discount": 0.5})


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        ({"contents": [], "generationConfig": {"maxOutputTokens": 64}}, 64),
        ({"request": {"contents": [], "generation_config": {"max_output_tokens": 32}}}, 32),
        ({"contents": [], "config": {"max_output_tokens": 16}}, 16),
        ({"contents": [], "generationConfig": {"temperature": 0}}, None),
        ({"contents": [], "generationConfig": {"maxOutputTokens": 0}}, None),
        ({"contents": [], "generationConfig": {"maxOutputTokens": True}}, None),
        ({"contents": []}, None),
    ],
)
def test_max_output_tokens(request_, expected):
    assert max_output_tokens(request_) == expected


def test_estimate_request_counts_json_characters_over_four():
    request = {"contents": [{"role": "user", "parts": [{"text": "x" * 100}]}]}
    text = json.dumps(request, separators=(",", ":"))
    assert len(text) == 152  # checked by hand: 52 characters of structure + 100 of text
    assert estimate_request(request) == Usage(prompt=38, output=1024)  # ceil(152 / 4)
    assert estimate_request(text, default_output_tokens=10) == Usage(prompt=38, output=10)
    assert estimate_request('{"generationConfig":{"maxOutputTokens":5}}') == Usage(11, 5)  # ceil(42/4)
    assert estimate_request("not json") == Usage(2, 1024)


def test_estimate_sums_requests_and_prices_them_per_tier():
    requests = [Usage(1_000_000, 0, 0), Usage(100, 1000, 0)]
    est = estimate(TABLE, "gemini-2.5-pro", "vertex", requests)
    # long: 1M x 2.50 / 2 = 1.25; standard: (100 x 1.25 + 1000 x 10) / 1M / 2 = 0.0050625
    assert est.usd == pytest.approx(1.2550625)
    assert est.requests == 2 and est.tokens == Usage(1_000_100, 1000, 0)
    unknown = estimate(TABLE, "my-model", "vertex", requests)
    assert unknown.usd is None and unknown.tokens == Usage(1_000_100, 1000, 0)


@pytest.mark.parametrize(
    ("usd", "budget", "verdict"),
    [
        (5.0, None, "no_budget"),
        (None, None, "no_budget"),
        (None, 1.0, "no_price"),
        (1.0, 1.0, "within"),
        (0.0, 0.0, "within"),
        (1.0000001, 1.0, "over"),
        (0.5, 1.0, "within"),
    ],
)
def test_budget_verdict(usd, budget, verdict):
    assert budget_verdict(usd, budget) == verdict


def test_model_id():
    assert model_id(" publishers/google/models/gemini-2.5-pro ") == "gemini-2.5-pro"


# --- embedding models -----------------------------------------------------------------------------


def test_embedding_models_are_priced_with_their_own_unit_discount_and_source():
    text = TABLE.lookup("text-embedding-005", "vertex")
    assert (text.unit, text.standard.input, text.standard.output, text.batch_discount) == (
        "characters", 0.025, 0.0, 0.2,
    )  # fmt: skip
    gemini = TABLE.lookup("models/gemini-embedding-001", "gemini_api")
    assert (gemini.unit, gemini.standard.input, gemini.standard.output, gemini.batch_discount) == (
        "tokens", 0.15, 0.0, None,
    )  # fmt: skip
    assert TABLE.lookup("gemini-embedding-001", "vertex").batch_discount == 0.0  # no batch price found
    # each entry's own retrieval date, else the table's
    assert (text.retrieved, TABLE.lookup("gemini-2.5-flash", "vertex").retrieved) == (
        "2026-12-06",
        "2026-03-01",
    )
    assert (
        cost_of(TABLE, "text-embedding-005", "vertex", {"standard": Usage()}).prices_retrieved == "2026-12-06"
    )
    assert TABLE.lookup("text-embedding-005", "gemini_api") is None
    for model, backends in shipped_prices()["models"].items():
        if "embedding" in model:
            assert all(entry["source"].startswith("https://") for entry in backends.values()), model


@pytest.mark.parametrize(
    ("model", "backend", "usage", "usd"),
    [
        # 1M billable characters x 0.025 per 1M, 20% off: 0.02; its 250k tokens are not billed
        ("text-embedding-005", "vertex", Usage(prompt=250_000, characters=1_000_000), 0.02),
        ("text-embedding-005", "vertex", Usage(prompt=250_000), 0.0),  # characters not counted: nothing
        # 1M tokens x 0.15, half: 0.075 (the Gemini API's batch price); characters are not billed
        ("gemini-embedding-001", "gemini_api", Usage(prompt=1_000_000, characters=9_999), 0.075),
        # Vertex AI: the online price, no discount
        ("gemini-embedding-001", "vertex", Usage(prompt=1_000_000), 0.15),
    ],
)
def test_embedding_batch_cost_bills_the_models_unit(model, backend, usage, usd):
    assert batch_cost(TABLE, TABLE.lookup(model, backend), {"standard": usage}) == pytest.approx(usd)


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"models": {"m": {"vertex": {"input": 1, "output": 0, "unit": "words"}}}}, "unit must be one of"),
        ({"models": {"m": {"vertex": {"input": 1, "output": 0, "batch_discount": 1}}}}, r"\[0, 1\)"),
    ],
)
def test_a_bad_unit_or_model_discount_is_a_value_error(override, match):
    with pytest.raises(ValueError, match=match):
        load_prices(override)


@pytest.mark.parametrize(
    ("request_", "usage"),
    [
        # 10 characters, 7 without white space -> ceil(10 / 4) = 3 tokens, no output
        ({"content": "ab cd\tef g"}, Usage(prompt=3, characters=7)),
        ('{"content": "ab cd\\tef g"}', Usage(prompt=3, characters=7)),  # a JSONL line or a cell
        ("ab cd\tef g", Usage(prompt=3, characters=7)),  # a bare text (inline)
        # a Gemini API request: the parts' text, not the JSON around it
        ({"content": {"parts": [{"text": "abcd"}, {"text": "ef"}]}}, Usage(prompt=2, characters=6)),
        ({"request": {"content": {"parts": [{"text": "x" * 9}]}}}, Usage(prompt=3, characters=9)),
    ],
)
def test_an_embedding_request_is_estimated_from_its_text_with_no_output(request_, usage):
    assert estimate_request(request_, task="embed", default_output_tokens=999) == usage


def test_billable_characters_are_code_points_without_white_space():
    from gemini_batch.costs import billable_characters

    assert billable_characters("héllo wörld\n日本") == 12
