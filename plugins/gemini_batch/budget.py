"""The budget guard before submit: estimate what a new job would cost, refuse it above the budget.

Invariants:
- Runs before a new submission only (with the pre-flight checks, never before a re-attach or a
  return), and only when a budget is set: without ``max_estimated_cost`` nothing is read.
- One estimate rule (costs.estimate_request: characters of each request's JSON / 4, output from
  its ``maxOutputTokens`` or a default; an embedding job's requests: the text they embed / 4,
  its billable characters, no output) for every source kind; this module only reads the
  requests: inline ones as given, a BigQuery table's ``request`` column (an embedding job's
  ``content``) by one query (only the figures come back), gs:// JSONL objects and Gemini API
  files streamed line by line.
- Above the budget, or without a price for the model, the submission is refused with
  :class:`GeminiBatchBudgetExceeded` (a pre-flight error: no job exists, not retried), naming the
  estimate, the budget and how to raise it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gemini_batch.costs import (
    CHARS_PER_TOKEN,
    DEFAULT_OUTPUT_TOKENS,
    PRICES_VARIABLE,
    Estimate,
    PriceTable,
    Usage,
    batch_cost,
    budget_verdict,
    estimate,
    estimate_request,
)
from gemini_batch.exceptions import GeminiBatchConfigError, GeminiBatchPreflightError

if TYPE_CHECKING:
    from gemini_batch.job_task import JobTask
    from gemini_batch.sources import BatchSource


class GeminiBatchBudgetExceeded(GeminiBatchPreflightError):
    """The estimated cost of a new job is above ``max_estimated_cost`` (or cannot be priced). No job
    exists; not retried. The message names the estimate, the budget and how to raise it."""


def bigquery_estimate_sql(table: str, request_type: str, task: JobTask = "generate") -> str:
    """The query that sums a requests table server-side (only four numbers come back): the
    characters of each ``request`` (a JSON column as its compact JSON text, a STRING as is); of an
    embedding job's table, the ``content`` it embeds (its billable characters: white space
    excluded) and no output."""
    if task == "embed":
        return rf"""
SELECT
  COUNT(*) AS requests,
  SUM(CAST(CEIL(LENGTH(COALESCE(`content`, '')) / {CHARS_PER_TOKEN}) AS INT64)) AS prompt,
  0 AS output,
  SUM(LENGTH(REGEXP_REPLACE(COALESCE(`content`, ''), r'\s', ''))) AS characters
FROM `{table}`
"""
    text = "TO_JSON_STRING(`request`)" if request_type == "JSON" else "CAST(`request` AS STRING)"
    return f"""
SELECT
  COUNT(*) AS requests,
  SUM(CAST(CEIL(LENGTH({text}) / {CHARS_PER_TOKEN}) AS INT64)) AS prompt,
  SUM(COALESCE(SAFE_CAST(JSON_VALUE(`request`, '$.generationConfig.maxOutputTokens') AS INT64),
               @default_output_tokens)) AS output
FROM `{table}`
"""


@dataclass
class RequestReads:
    """How the requests of each source kind are read (the operator's clients, fakes in tests).

    :param bigquery_query: ``(table, params) -> {"requests", "prompt", "output"}`` (bigquery_estimate_sql).
    :param gcs_lines: ``gs:// uri -> lines`` (a wildcard expands to every matching object).
    :param file_lines: ``files/NAME -> lines`` of a Gemini API file.
    """

    bigquery_query: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None
    gcs_lines: Callable[[str], Iterable[bytes | str]] | None = None
    file_lines: Callable[[str], Iterable[bytes | str]] | None = None


def _line_usages(
    lines: Iterable[bytes | str], default_output_tokens: int, task: JobTask = "generate"
) -> Iterator[Usage]:
    for line in lines:
        text = line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line
        text = text.strip()
        if not text:
            continue
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            yield estimate_request(text, default_output_tokens=default_output_tokens, task=task)
            continue
        # A Vertex or Gemini API line: {"request": {...}, ...}; the request is what is billed.
        request = parsed.get("request", parsed) if isinstance(parsed, dict) else parsed
        yield estimate_request(request, default_output_tokens=default_output_tokens, task=task)


def estimate_source(
    source: BatchSource,
    reads: RequestReads,
    *,
    table: PriceTable,
    model: str,
    backend: str,
    default_output_tokens: int = DEFAULT_OUTPUT_TOKENS,
    task: JobTask = "generate",
) -> Estimate:
    """The estimated cost of submitting ``source`` (costs.estimate over its requests' usages).

    A BigQuery table is summed server-side, so its requests are priced in the standard tier (an
    under-estimate only for prompts above a long-context threshold, 200k tokens).
    """
    if source.kind != "bigquery":
        usages = request_usages(source, reads, default_output_tokens=default_output_tokens, task=task)
        return estimate(table, model, backend, usages)
    if reads.bigquery_query is None:
        raise ValueError("a BigQuery client is needed to estimate a bq:// source")
    row = reads.bigquery_query(
        source.uris[0][len("bq://") :], {"default_output_tokens": default_output_tokens}
    )
    total = Usage(
        prompt=int(row.get("prompt") or 0),
        output=int(row.get("output") or 0),
        characters=int(row.get("characters") or 0),
    )
    prices = table.lookup(model, backend)
    usd = None if prices is None else batch_cost(table, prices, {"standard": total})
    return Estimate(int(row.get("requests") or 0), {"standard": total}, usd, model)


def request_usages(
    source: BatchSource,
    reads: RequestReads,
    *,
    default_output_tokens: int = DEFAULT_OUTPUT_TOKENS,
    task: JobTask = "generate",
) -> Iterable[Usage]:
    """The estimated usage of every request of an inline, gs:// or files/ source."""
    if source.kind == "inline":
        return [
            estimate_request(r, default_output_tokens=default_output_tokens, task=task)
            for r in source.requests
        ]
    if source.kind == "gcs":
        if reads.gcs_lines is None:
            raise ValueError("a GCS client is needed to estimate a gs:// source")
        return (
            u for uri in source.uris for u in _line_usages(reads.gcs_lines(uri), default_output_tokens, task)
        )
    if source.kind == "file":
        if reads.file_lines is None:
            raise ValueError("a genai client is needed to estimate a files/ source")
        return _line_usages(reads.file_lines(source.uris[0]), default_output_tokens, task)
    raise ValueError(f"unknown source kind {source.kind!r}")


def budget_of(value: Any) -> float | None:
    """``max_estimated_cost`` as a number: None, '' and 'None' (an empty Param rendered) mean no budget.

    :raises GeminiBatchConfigError: not a number, or negative.
    """
    if value is None or (isinstance(value, str) and value.strip() in ("", "None", "null")):
        return None
    try:
        budget = float(value)
    except (TypeError, ValueError):
        budget = -1.0
    if not budget >= 0 or isinstance(value, bool):
        raise GeminiBatchConfigError(
            f"max_estimated_cost must be a non-negative number (USD at batch prices) or None, got {value!r}."
        )
    return budget


def money(usd: float) -> str:
    """An amount for a message: 4 decimals, or 9 (nano-dollars, as the costs log) below a tenth of a cent."""
    return f"{usd:.4f}" if usd >= 0.001 else f"{usd:.9f}"


def refusal(
    estimated: Estimate, budget: float, table: PriceTable, backend: str, task: JobTask = "generate"
) -> str | None:
    """The message of a refused submission, or None when it may go (see :func:`costs.budget_verdict`)."""
    verdict = budget_verdict(estimated.usd, budget)
    if verdict in ("within", "no_budget"):
        return None
    tokens = estimated.tokens
    how = "Raise max_estimated_cost (the operator argument, or the DAG run's max_estimated_cost Param)"
    if task == "embed":
        how += ", or embed fewer or shorter texts"
        rule = "input estimated as the embedded text's characters / 4, no output for an embedding"
    else:
        how += ", or set maxOutputTokens in the requests to lower the output estimate"
        rule = (
            f"input estimated as characters / {CHARS_PER_TOKEN}, output as each request's maxOutputTokens "
            "or the default"
        )
    prices = table.lookup(estimated.model, backend)
    retrieved = prices.retrieved if prices is not None else table.retrieved
    billed = (
        f", {tokens.characters:,} billable characters"
        if prices is not None and prices.unit == "characters"
        else ""
    )
    if verdict == "no_price":
        return (
            f"Not submitting the batch job: max_estimated_cost={budget} is set but the price table (shipped "
            f"{table.retrieved}, Variable {PRICES_VARIABLE}, argument prices) has no price for model "
            f"{estimated.model!r} on {backend}, so the budget cannot be checked. Add its prices to the Variable "
            f"{PRICES_VARIABLE} or the prices argument, or unset max_estimated_cost."
        )
    return (
        f"Not submitting the batch job: its estimated cost {money(estimated.usd)} {table.currency} is above "
        f"max_estimated_cost={budget} ({estimated.requests:,} request(s), about {tokens.prompt:,} input and "
        f"{tokens.output:,} output tokens{billed} at batch prices of {estimated.model} retrieved "
        f"{retrieved}; {rule}). No job was created. {how}."
    )


def check_budget(
    source: BatchSource,
    *,
    model: str,
    backend: str,
    budget: float | None,
    table: PriceTable,
    reads: RequestReads,
    default_output_tokens: int = DEFAULT_OUTPUT_TOKENS,
    log: Any = None,
    task: JobTask = "generate",
) -> Estimate | None:
    """Estimate a new job's cost and raise :class:`GeminiBatchBudgetExceeded` above ``budget``.

    :return: the estimate (None when no budget is set: nothing is read).
    """
    if budget is None:
        return None
    estimated = estimate_source(
        source,
        reads,
        table=table,
        model=model,
        backend=backend,
        default_output_tokens=default_output_tokens,
        task=task,
    )
    message = refusal(estimated, budget, table, backend, task)
    if message:
        raise GeminiBatchBudgetExceeded(message)
    if log is not None:
        log.info(
            "Estimated cost %.6f %s (about %d input and %d output tokens) is within max_estimated_cost=%s",
            estimated.usd,
            table.currency,
            estimated.tokens.prompt,
            estimated.tokens.output,
            budget,
        )
    return estimated


__all__ = [
    "GeminiBatchBudgetExceeded",
    "RequestReads",
    "bigquery_estimate_sql",
    "budget_of",
    "check_budget",
    "estimate_source",
    "refusal",
    "request_usages",
]
