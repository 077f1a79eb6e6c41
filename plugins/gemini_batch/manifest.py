"""The small, JSON-able manifest of a batch job: what the operator and sensor hand downstream.

Invariants: a manifest names where results are, it never holds them. The one exception is
the Gemini API's inline responses, kept only under a size cap (:data:`MAX_INLINE_RESULTS_BYTES`
by default); above it :func:`build_manifest` raises and says to use a file source. Keys follow
docs/design.md ("The manifest"); every value is a str, int, float, bool, None, list or dict.
``task`` is ``generate`` or ``embed`` (an embeddings job: its output holds vectors, the loader
writes them to the embeddings table). ``outcome`` is a :data:`~gemini_batch.states.Outcome` (the words of trigger events too), None
while the job is not terminal. ``tokens`` (by kind: prompt, candidates, thoughts, total) and
``estimated_cost_usd`` (costs.py, at batch prices) are known when the responses are (inline);
otherwise None here and the loader counts them from the output.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from gemini_batch.costs import PriceTable, Usage, by_tier, cost_of, load_prices
from gemini_batch.exceptions import GeminiBatchInlineResultsTooLarge
from gemini_batch.job_task import JobTask, task_of
from gemini_batch.states import Counts, Outcome, counts_of, normalize_state, outcome_of

if TYPE_CHECKING:
    from gemini_batch.backends import Backend

#: Default cap on inline responses carried in XCom (bytes of JSON).
MAX_INLINE_RESULTS_BYTES = 256 * 1024

VERTEX_CONSOLE = "https://console.cloud.google.com/vertex-ai/locations/{location}/batch-predictions/{job_id}?project={project}"
#: AI Studio has no per-batch page; its batch list is the closest view.
AI_STUDIO_BATCHES = "https://aistudio.google.com/batches"


def console_url(
    backend: Backend, job_name: str | None, project: str | None, location: str | None
) -> str | None:
    """The page of a job in the Google Cloud console (Vertex AI) or AI Studio (Gemini API)."""
    if not job_name:
        return None
    if backend == "gemini_api":
        return AI_STUDIO_BATCHES
    parts = job_name.split("/")
    job_id = parts[-1]
    if len(parts) == 6:
        project, location = parts[1], parts[3]
    if not project or not location:
        return None
    return VERTEX_CONSOLE.format(location=location, job_id=job_id, project=project)


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _bq_uri(value: str | None) -> str | None:
    if not value:
        return None
    return value if value.startswith("bq://") else f"bq://{value}"


def _bq_dataset(table_uri: str | None) -> str | None:
    if not table_uri:
        return None
    parts = table_uri[len("bq://") :].split(".")
    return f"bq://{parts[0]}.{parts[1]}" if len(parts) >= 2 else None


def _bigquery_output(job: Any) -> tuple[str | None, str | None]:
    """(table, dataset) as bq:// URIs. The SDK drops ``outputInfo.bigqueryOutputDataset`` and Vertex may
    give the table as a bare ``predictions_<ts>`` name: it is then joined to the dataset of ``dest``."""
    output_info = getattr(job, "output_info", None)
    table = getattr(output_info, "bigquery_output_table", None)
    dest_uri = getattr(getattr(job, "dest", None), "bigquery_uri", None)
    dest_dataset = _bq_dataset(_bq_uri(dest_uri)) if dest_uri else None
    if table:
        if "." in table.removeprefix("bq://"):
            table_uri = _bq_uri(table)
        elif dest_dataset:
            table_uri = f"{dest_dataset}.{table}"
        else:
            table_uri = None
        return table_uri, _bq_dataset(table_uri) or dest_dataset
    return None, dest_dataset if output_info is not None else None


def _inline_response_items(job: Any) -> Any:
    """The inline responses of a job, generation or embeddings, in input order; None: not inline.

    google-genai files embeddings under ``dest.inlined_embed_content_responses`` when a response
    holds an ``embedding``; when every row failed nothing tells them apart, and they stay under
    ``dest.inlined_responses``: both are read.
    """
    dest = getattr(job, "dest", None)
    embedded = getattr(dest, "inlined_embed_content_responses", None)
    return embedded if embedded is not None else getattr(dest, "inlined_responses", None)


def _usage_of(response: dict[str, Any]) -> Usage | None:
    """A response's tokens: a generation's ``usage_metadata``, an embedding's ``token_count`` (prompt)."""
    usage = response.get("usage_metadata") or {}
    if usage:
        return Usage.from_usage_metadata(usage)
    if response.get("token_count") is not None:
        return Usage(prompt=int(response["token_count"]))
    return None


def _inline_results(job: Any) -> tuple[list[dict[str, Any]] | None, Counts | None, list[Usage] | None]:
    """The inline responses as dicts, their counts, and each answered request's token usage."""
    responses = _inline_response_items(job)
    if responses is None:
        return None, None, None
    items: list[dict[str, Any]] = []
    failed = 0
    usages: list[Usage] = []
    for item in responses:
        data = item.model_dump(mode="json", exclude_none=True) if hasattr(item, "model_dump") else dict(item)
        items.append(data)
        if data.get("error"):
            failed += 1
        usage = _usage_of(data.get("response") or {})
        if usage is not None:
            usages.append(usage)
    counts = Counts(succeeded=len(items) - failed, failed=failed, incomplete=0, total=len(items))
    return items, counts, usages or None


def token_counts(usages: list[Usage] | None) -> dict[str, int] | None:
    """The manifest's ``tokens``: prompt, candidates (output), thoughts and total, summed."""
    if usages is None:
        return None
    total = sum(usages, Usage())
    return {
        "prompt": total.prompt,
        "candidates": total.output,
        "thoughts": total.thinking,
        "total": total.total,
    }


def _estimated_cost(
    usages: list[Usage] | None, prices: PriceTable, model: str | None, backend: Backend
) -> float | None:
    """USD of the answered requests at batch prices, each in its own tier; None: unknown."""
    model_prices = prices.lookup(model, backend)
    if usages is None or model_prices is None:
        return None
    return cost_of(prices, model, backend, by_tier(model_prices, usages)).as_dict()["usd"]


def _prices_retrieved(prices: PriceTable, model: str | None, backend: Backend) -> str | None:
    """When the model's prices were read from their source."""
    model_prices = prices.lookup(model, backend)
    return model_prices.retrieved if model_prices is not None else None


@dataclass(frozen=True)
class BatchManifest:
    """The manifest (see docs/design.md). Build it with :func:`build_manifest`; hand on :meth:`as_dict`."""

    job_name: str
    backend: str
    model: str | None
    state: str
    task: JobTask
    outcome: Outcome | None
    source: str | None
    display_name: str | None
    work_id: str | None
    gcs_output_directory: str | None = None
    bigquery_output_table: str | None = None
    bigquery_output_dataset: str | None = None
    file_name: str | None = None
    inline_responses: list[dict[str, Any]] | None = None
    counts: dict[str, int] | None = None
    tokens: dict[str, int] | None = None
    estimated_cost_usd: float | None = None
    prices_retrieved: str | None = None
    create_time: str | None = None
    start_time: str | None = None
    end_time: str | None = None
    console_url: str | None = None
    error: str | None = field(default=None)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def counts_obj(self) -> Counts | None:
        return Counts.from_dict(self.counts)


def build_manifest(
    job: Any,
    *,
    backend: Backend,
    source: str | None = None,
    work_id: str | None = None,
    model: str | None = None,
    project: str | None = None,
    location: str | None = None,
    max_inline_bytes: int = MAX_INLINE_RESULTS_BYTES,
    prices: PriceTable | None = None,
    task: JobTask | None = None,
) -> BatchManifest:
    """The manifest of an SDK ``BatchJob``.

    :param job: Required. A ``google.genai.types.BatchJob`` (or a look-alike in tests).
    :param backend: Required. ``vertex`` or ``gemini_api``.
    :param source: Optional. The source description (``bq://...``, ``inline:12 requests``...).
    :param work_id: Optional. The work id of the task instance that owns the job.
    :param model: Optional. The model asked for, when the job does not say.
    :param project: Optional. For the console link.
    :param location: Optional. For the console link.
    :param max_inline_bytes: Optional. Cap on inline responses carried in the manifest.
    :param prices: Optional. The price table (default: the shipped one, costs.load_prices()).
    :param task: Optional. ``generate`` or ``embed`` as the create operator planned it; None: what
        the job's model says (job_task.task_of), e.g. for a job read by the get operator.
    :raises GeminiBatchInlineResultsTooLarge: inline responses above the cap.
    """
    name = getattr(job, "name", None) or ""
    state = normalize_state(getattr(job, "state", None))
    inline, inline_counts, usages = _inline_results(job)
    counts = counts_of(job) or inline_counts
    if inline is not None:
        size = len(json.dumps(inline, default=str).encode())
        if size > max_inline_bytes:
            raise GeminiBatchInlineResultsTooLarge(
                f"Batch job {name} returned {len(inline):,} inline responses, {size:,} bytes of JSON, above "
                f"the XCom cap of {max_inline_bytes:,} bytes (max_inline_results_bytes). Results do not "
                "belong in XCom: upload the requests as a JSONL file and pass 'files/NAME' as src so the "
                "service writes a results file (manifest 'file_name'), or raise max_inline_results_bytes."
            )
    dest = getattr(job, "dest", None)
    output_info = getattr(job, "output_info", None)
    table, dataset = _bigquery_output(job)
    error = getattr(job, "error", None)
    error_text = None
    if error is not None:
        error_text = getattr(error, "message", None) or str(error)
    job_model = getattr(job, "model", None) or model
    table_of_prices = prices if prices is not None else load_prices()
    cost = _estimated_cost(usages, table_of_prices, job_model, backend)
    return BatchManifest(
        job_name=name,
        backend=backend,
        model=job_model,
        state=state,
        task=task or task_of(job_model or ""),
        outcome=outcome_of(state, counts),
        source=source,
        display_name=getattr(job, "display_name", None),
        work_id=work_id,
        gcs_output_directory=getattr(output_info, "gcs_output_directory", None),
        bigquery_output_table=table,
        bigquery_output_dataset=dataset,
        file_name=getattr(dest, "file_name", None),
        inline_responses=inline,
        counts=counts.as_dict() if counts else None,
        tokens=token_counts(usages),
        estimated_cost_usd=cost,
        prices_retrieved=_prices_retrieved(table_of_prices, job_model, backend) if cost is not None else None,
        create_time=_iso(getattr(job, "create_time", None)),
        start_time=_iso(getattr(job, "start_time", None)),
        end_time=_iso(getattr(job, "end_time", None)),
        console_url=console_url(backend, name, project, location),
        error=error_text,
    )
