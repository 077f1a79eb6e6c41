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
- A model is priced per token (the default) or per billable character (``unit: characters``:
  Vertex AI's text-embedding-00x, billed per UTF-8 code point without white space,
  :func:`billable_characters`); a character-priced model's input price applies to
  ``Usage.characters``, never to tokens. A model's entry may set its own ``batch_discount``.

The estimate before submit (:func:`estimate_request`) is character based, one rule for every
source kind: input tokens = ceil(characters of the request's compact JSON / 4). The JSON's
keys and braces are counted too, so for text in Latin scripts it over-counts (by about 15 to 20
tokens of structure per request, plus whatever the tokenizer packs tighter than 4 characters);
for scripts the tokenizer counts about one token per character (Chinese, Japanese, Korean) it
may under-count by up to 4x. Output tokens = the request's ``maxOutputTokens`` when it sets one
(an upper bound: thinking is counted inside it), else ``default_output_tokens`` per request (an
assumption, not a bound: raise it for long answers or thinking models).

An embedding request (``task="embed"``) is estimated from the text it embeds only (its
``content``: a string, or the ``text`` of its parts), not its JSON: input tokens = ceil(characters
/ 4), billable characters counted exactly, output tokens 0 (an embedding has none).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

from gemini_batch.backends import Backend
from gemini_batch.job_task import JobTask

#: The price tier of one request: its prompt is at most, or above, the model's long-context threshold.
Tier = Literal["standard", "long"]
#: What a submission is, against its budget.
Verdict = Literal["no_budget", "within", "over", "no_price"]
#: What a model's input price is per: tokens, or billable characters (code points without white space).
Unit = Literal["tokens", "characters"]
UNITS: tuple[Unit, ...] = ("tokens", "characters")

#: Characters per token of the estimate before submit (see the module docstring).
CHARS_PER_TOKEN = 4
#: Output tokens assumed for a request that sets no ``maxOutputTokens``.
DEFAULT_OUTPUT_TOKENS = 1024
#: The Airflow Variable that overrides parts of the price table (JSON, the shape of prices.json).
PRICES_VARIABLE = "gemini_batch_prices"


@dataclass(frozen=True)
class Usage:
    """Token counts by kind (of one request, or summed over many in one price tier), and the
    input's billable characters (what a character-priced model bills; 0 where not counted)."""

    prompt: int = 0
    output: int = 0
    thinking: int = 0
    characters: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt + other.prompt,
            self.output + other.output,
            self.thinking + other.thinking,
            self.characters + other.characters,
        )

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
    :param unit: what the input price is per: tokens, or billable characters.
    :param batch_discount: this model's own batch discount (None: the table's).
    :param retrieved: when its prices were read from their source (the entry's, else the table's).
    """

    model: str
    standard: Rates
    long: Rates | None = None
    long_above: int | None = None
    unit: Unit = "tokens"
    batch_discount: float | None = None
    retrieved: str = ""

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
                    unit = prices.get("unit", "tokens")
                    if unit not in UNITS:
                        raise ValueError(f"{model} on {backend}: unit must be one of {UNITS}, got {unit!r}")
                    own = prices.get("batch_discount")
                    models[model][backend] = ModelPrices(
                        model=model,
                        standard=Rates.from_mapping(prices),
                        long=Rates.from_mapping(long) if long else None,
                        long_above=int(long["above_prompt_tokens"]) if long else None,
                        unit=unit,
                        batch_discount=None if own is None else _discount(own),
                        retrieved=str(prices.get("retrieved", data.get("retrieved", ""))),
                    )
            discount = _discount(data["batch_discount"])
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


def _discount(value: Any) -> float:
    discount = float(value)
    if not 0 <= discount < 1:
        raise ValueError(f"batch_discount must be in [0, 1), got {discount}")
    return discount


def billable_characters(text: str) -> int:
    """The characters Vertex AI bills of a text: UTF-8 code points, white space excluded."""
    return sum(1 for char in text if not char.isspace())


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
    """USD of ``usage`` (sums per tier) at batch prices: standard price x (1 - batch_discount), the
    model's own discount when it has one; the input is its tokens, or its billable characters when
    the model is priced per character."""
    total = 0.0
    for tier, tokens in usage.items():
        rates = prices.rates(tier)
        billed_input = tokens.characters if prices.unit == "characters" else tokens.prompt
        total += billed_input * rates.input + tokens.output * rates.output + tokens.thinking * rates.thinking
    discount = table.batch_discount if prices.batch_discount is None else prices.batch_discount
    return total * (1 - discount) / table.per_tokens


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
    return Cost(tokens, batch_cost(table, prices, usage), model_id(model), prices.model, prices.retrieved)


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


def embedded_text(request: Any) -> str:
    """The text an embedding request embeds: its ``content`` when a string, else the ``text`` of
    its parts, joined (a Vertex instance ``{"content": ...}``, a Gemini API
    ``{"content": {"parts": [{"text": ...}]}}``, an inline content or a bare string)."""
    if isinstance(request, str):
        return request
    if isinstance(request, Mapping):
        texts = [request["text"]] if isinstance(request.get("text"), str) else []
        for key in ("content", "contents", "parts", "request"):
            if key in request:
                texts.append(embedded_text(request[key]))
        return "".join(texts)
    if isinstance(request, (list, tuple)):
        return "".join(embedded_text(item) for item in request)
    return ""


def estimate_embedding(request: Any) -> Usage:
    """The estimated usage of one embedding request (see the module docstring): no output tokens."""
    text = embedded_text(request)
    return Usage(prompt=math.ceil(len(text) / CHARS_PER_TOKEN), characters=billable_characters(text))


def estimate_request(
    request: Mapping[str, Any] | str,
    *,
    default_output_tokens: int = DEFAULT_OUTPUT_TOKENS,
    task: JobTask = "generate",
) -> Usage:
    """The estimated usage of one request, before submit (the rule of the module docstring).

    :param request: the request as submitted (a dict, or its JSON text: a JSONL line, a BigQuery cell).
    :param task: ``embed``: an embedding request (:func:`estimate_embedding`).
    """
    if task == "embed":
        return estimate_embedding(_parsed(request) if isinstance(request, str) else request)
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


def _parsed(text: str) -> Any:
    """A JSON text parsed, or the text itself when it is not JSON (a bare string to embed)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


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
    "UNITS",
    "Unit",
    "batch_cost",
    "billable_characters",
    "embedded_text",
    "estimate_embedding",
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
