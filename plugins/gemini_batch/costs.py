"""What a batch job costs: the price table, token counts by kind, and the estimate before submit.

Invariants:
- Pure: nothing here reads the network, a Variable or the clock; callers hand in the table
  (:func:`load_prices` merges the shipped ``prices.json`` with an override) and the counts.
- ONE rule per figure: :func:`batch_cost` prices tokens (standard price times
  ``1 - batch_discount``, per price tier), :func:`tier_of` picks a request's tier from its
  prompt tokens, :func:`estimate_request` estimates one request before submit,
  :func:`budget_verdict` decides whether a submission is within budget.
- Thinking tokens are a kind of their own here even though both services bill them as output
  (the table may price them apart). From ``usageMetadata``: ``thoughtsTokenCount`` when given,
  else ``totalTokenCount - promptTokenCount - candidatesTokenCount`` (never below 0).
- An unknown model has no price: its cost is None, never 0.

The estimate before submit (:func:`estimate_request`) is character based, one rule for every
source kind: input tokens = ceil(characters of the request's compact JSON / 4). The JSON's
keys and braces are counted too, so for text in Latin scripts it over-counts (by about 15 to 20
tokens of structure per request, plus whatever the tokenizer packs tighter than 4 characters);
for scripts the tokenizer counts about one token per character (Chinese, Japanese, Korean) it
may under-count by up to 4x. Output tokens = the request's ``maxOutputTokens`` when it sets one
(an upper bound: thinking is counted inside it), else ``default_output_tokens`` per request (an
assumption, not a bound: raise it for long answers or thinking models).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

from gemini_batch.backends import Backend

#: The price tier of one request: its prompt is at most, or above, the model's long-context threshold.
Tier = Literal["standard", "long"]
#: What a submission is, against its budget.
Verdict = Literal["no_budget", "within", "over", "no_price"]

#: Characters per token of the estimate before submit (see the module docstring).
CHARS_PER_TOKEN = 4
#: Output tokens assumed for a request that sets no ``maxOutputTokens``.
DEFAULT_OUTPUT_TOKENS = 1024
#: The Airflow Variable that overrides parts of the price table (JSON, the shape of prices.json).
PRICES_VARIABLE = "gemini_batch_prices"


@dataclass(frozen=True)
class Usage:
    """Token counts by kind (of one request, or summed over many in one price tier)."""

    prompt: int = 0
    output: int = 0
    thinking: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.prompt + other.prompt, self.output + other.output, self.thinking + other.thinking)

    @property
    def total(self) -> int:
        return self.prompt + self.output + self.thinking

    def as_dict(self) -> dict[str, int]:
        return {"prompt": self.prompt, "output": self.output, "thinking": self.thinking, "total": self.total}

    @classmethod
    def from_usage_metadata(cls, usage: Mapping[str, Any] | None) -> Usage:
        """From a response's ``usageMetadata`` (camelCase on the wire, snake_case in the SDK's dumps)."""
        usage = usage or {}

        def count(camel: str, snake: str) -> int:
            value = usage.get(camel, usage.get(snake))
            return int(value or 0)

        prompt = count("promptTokenCount", "prompt_token_count")
        output = count("candidatesTokenCount", "candidates_token_count")
        if "thoughtsTokenCount" in usage or "thoughts_token_count" in usage:
            thinking = count("thoughtsTokenCount", "thoughts_token_count")
        else:
            thinking = max(count("totalTokenCount", "total_token_count") - prompt - output, 0)
        return cls(prompt, output, thinking)


@dataclass(frozen=True)
class Rates:
    """USD per ``per_tokens`` tokens of each kind (standard, online prices)."""

    input: float
    output: float
    thinking: float

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Rates:
        output = float(data["output"])
        return cls(float(data["input"]), output, float(data.get("thinking", output)))


@dataclass(frozen=True)
class ModelPrices:
    """The prices of one model on one backend.

    :param long_above: prompts above this many tokens are billed at ``long`` (None: one tier).
    """

    model: str
    standard: Rates
    long: Rates | None = None
    long_above: int | None = None

    def rates(self, tier: Tier) -> Rates:
        return self.long if tier == "long" and self.long is not None else self.standard


@dataclass(frozen=True)
class PriceTable:
    """The price table: per model and backend, with its source and date (see prices.json)."""

    source: str
    retrieved: str
    currency: str
    per_tokens: int
    batch_discount: float
    models: Mapping[str, Mapping[str, ModelPrices]] = field(repr=False)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> PriceTable:
        """Parse the shape of prices.json; a ValueError names what is wrong."""
        try:
            models: dict[str, dict[str, ModelPrices]] = {}
            for model, backends in data["models"].items():
                models[model] = {}
                for backend, prices in backends.items():
                    long = prices.get("long_context")
                    models[model][backend] = ModelPrices(
                        model=model,
                        standard=Rates.from_mapping(prices),
                        long=Rates.from_mapping(long) if long else None,
                        long_above=int(long["above_prompt_tokens"]) if long else None,
                    )
            discount = float(data["batch_discount"])
            if not 0 <= discount < 1:
                raise ValueError(f"batch_discount must be in [0, 1), got {discount}")
            return cls(
                source=str(data.get("source", "")),
                retrieved=str(data.get("retrieved", "")),
                currency=str(data.get("currency", "USD")),
                per_tokens=int(data.get("per_tokens", 1_000_000)),
                batch_discount=discount,
                models=models,
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(
                f"price table is malformed ({type(exc).__name__}: {exc}); see prices.json"
            ) from exc

    def lookup(self, model: str | None, backend: Backend | str) -> ModelPrices | None:
        """The prices of ``model`` on ``backend``: its exact id, else the longest listed id it starts
        with (``gemini-2.0-flash-001`` -> ``gemini-2.0-flash``); None when none is listed."""
        name = model_id(model)
        if not name:
            return None
        candidates = [m for m in self.models if name == m or name.startswith(m + "-")]
        for listed in sorted(candidates, key=len, reverse=True):
            prices = self.models[listed].get(backend)
            if prices is not None:
                return prices
        return None


def model_id(model: str | None) -> str:
    """``gemini-2.5-flash`` from ``models/gemini-2.5-flash`` or ``publishers/google/models/...``."""
    return (model or "").strip().rsplit("/", 1)[-1]


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def shipped_prices() -> dict[str, Any]:
    """The table shipped with the package (prices.json), as a dict."""
    return json.loads(resources.files("gemini_batch").joinpath("prices.json").read_text(encoding="utf-8"))


def load_prices(*overrides: Mapping[str, Any] | str | None) -> PriceTable:
    """The shipped table with each override merged over it in turn (later ones win, key by key).

    An override is a mapping or a JSON string of the shape of prices.json (a Variable's value);
    it may name only what it changes, e.g. ``{"models": {"my-model": {"vertex": {...}}}}``.
    """
    data: dict[str, Any] = shipped_prices()
    for override in overrides:
        if override is None or override == "":
            continue
        if isinstance(override, str):
            try:
                override = json.loads(override)
            except json.JSONDecodeError as exc:
                raise ValueError(f"price override is not JSON: {exc}") from exc
        if not isinstance(override, Mapping):
            raise ValueError(f"price override must be a JSON object, got {type(override).__name__}")
        data = _merge(data, override)
    return PriceTable.from_mapping(data)


def tier_of(prices: ModelPrices, prompt_tokens: int) -> Tier:
    """The tier of a request: ``long`` when its prompt has more tokens than the model's threshold."""
    if prices.long_above is not None and prompt_tokens > prices.long_above:
        return "long"
    return "standard"


def batch_cost(table: PriceTable, prices: ModelPrices, usage: Mapping[Tier, Usage]) -> float:
    """USD of ``usage`` (token sums per tier) at batch prices: standard price x (1 - batch_discount)."""
    total = 0.0
    for tier, tokens in usage.items():
        rates = prices.rates(tier)
        total += tokens.prompt * rates.input + tokens.output * rates.output + tokens.thinking * rates.thinking
    return total * (1 - table.batch_discount) / table.per_tokens


def by_tier(prices: ModelPrices, requests: Iterable[Usage]) -> dict[Tier, Usage]:
    """Per-request token counts summed per tier (the tier of each request is its own prompt's)."""
    sums: dict[Tier, Usage] = {}
    for request in requests:
        tier = tier_of(prices, request.prompt)
        sums[tier] = sums.get(tier, Usage()) + request
    return sums


@dataclass(frozen=True)
class Cost:
    """The tokens of a job (or a load) and what they cost, with the table's provenance."""

    tokens: Usage
    usd: float | None
    model: str | None
    prices_model: str | None = None
    prices_retrieved: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "tokens": self.tokens.as_dict(),
            "usd": None if self.usd is None else round(self.usd, 9),
            "model": self.model,
            "prices_model": self.prices_model,
            "prices_retrieved": self.prices_retrieved,
        }


def cost_of(
    table: PriceTable, model: str | None, backend: Backend | str, usage: Mapping[Tier, Usage]
) -> Cost:
    """The :class:`Cost` of token sums per tier; ``usd`` None when the model has no price."""
    tokens = sum(usage.values(), Usage())
    prices = table.lookup(model, backend)
    if prices is None:
        return Cost(tokens, None, model_id(model) or None)
    return Cost(tokens, batch_cost(table, prices, usage), model_id(model), prices.model, table.retrieved)


# --- the estimate before submit -------------------------------------------------------------------

_MAX_OUTPUT_KEYS = ("maxOutputTokens", "max_output_tokens")
_CONFIG_KEYS = ("generationConfig", "generation_config", "config")


def max_output_tokens(request: Mapping[str, Any]) -> int | None:
    """The ``maxOutputTokens`` a request sets (in ``generationConfig``, or ``config`` inline), if any."""
    for holder in (request, request.get("request")):
        if not isinstance(holder, Mapping):
            continue
        for key in _CONFIG_KEYS:
            config = holder.get(key)
            if isinstance(config, Mapping):
                for name in _MAX_OUTPUT_KEYS:
                    value = config.get(name)
                    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
                        return int(value)
    return None


def estimate_request(
    request: Mapping[str, Any] | str, *, default_output_tokens: int = DEFAULT_OUTPUT_TOKENS
) -> Usage:
    """The estimated usage of one request, before submit (the rule of the module docstring).

    :param request: the request as submitted (a dict, or its JSON text: a JSONL line, a BigQuery cell).
    """
    if isinstance(request, str):
        text = request
        try:
            parsed = json.loads(request)
        except json.JSONDecodeError:
            parsed = {}
    else:
        parsed = request
        text = json.dumps(request, separators=(",", ":"), ensure_ascii=False, default=str)
    output = max_output_tokens(parsed) if isinstance(parsed, Mapping) else None
    return Usage(
        prompt=max(1, math.ceil(len(text) / CHARS_PER_TOKEN)), output=output or default_output_tokens
    )


@dataclass(frozen=True)
class Estimate:
    """The estimated cost of a submission: its requests, tokens per tier and USD (None: no price)."""

    requests: int
    usage: Mapping[Tier, Usage]
    usd: float | None
    model: str

    @property
    def tokens(self) -> Usage:
        return sum(self.usage.values(), Usage())


def estimate(table: PriceTable, model: str, backend: Backend | str, requests: Iterable[Usage]) -> Estimate:
    """The estimate of a submission from its requests' estimated usages (:func:`estimate_request`)."""
    items = list(requests)
    prices = table.lookup(model, backend)
    if prices is None:
        return Estimate(len(items), {"standard": sum(items, Usage())}, None, model)
    usage = by_tier(prices, items)
    return Estimate(len(items), usage, batch_cost(table, prices, usage), model)


def budget_verdict(estimated_usd: float | None, budget: float | None) -> Verdict:
    """Whether a submission may go: no budget set, within it, over it, or no price to check it by."""
    if budget is None:
        return "no_budget"
    if estimated_usd is None:
        return "no_price"
    return "over" if estimated_usd > budget else "within"


__all__ = [
    "CHARS_PER_TOKEN",
    "DEFAULT_OUTPUT_TOKENS",
    "PRICES_VARIABLE",
    "Cost",
    "Estimate",
    "ModelPrices",
    "PriceTable",
    "Rates",
    "Tier",
    "Usage",
    "Verdict",
    "batch_cost",
    "budget_verdict",
    "by_tier",
    "cost_of",
    "estimate",
    "estimate_request",
    "load_prices",
    "max_output_tokens",
    "model_id",
    "shipped_prices",
    "tier_of",
]
