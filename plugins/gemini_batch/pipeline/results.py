"""The typed results and errors tables, and the figures a load returns.

Invariants: a (key, logical_date) pair is in the results table or in the errors table, never
both and never twice; both tables are partitioned by ``logical_date`` and clustered by ``key``,
so a re-run of one day touches one partition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from google.cloud import bigquery

    from gemini_batch.job_task import JobTask
    from gemini_batch.pipeline.refs import TableRef

__all__ = [
    "EMBEDDINGS_SCHEMA",
    "ERRORS_SCHEMA",
    "RESULTS_SCHEMA",
    "LoadCounts",
    "ReconciliationError",
    "add_nullable_columns",
    "answer_columns",
    "ensure_results_tables",
    "results_schema",
]

# (name, type, mode, description)
RESULTS_SCHEMA: tuple[tuple[str, str, str, str], ...] = (
    ("key", "STRING", "REQUIRED", "The request's key (a pass-through column or the gemini_batch_key label)."),
    ("logical_date", "DATE", "REQUIRED", "The data interval the request belongs to (the DAG run's date)."),
    ("model", "STRING", "NULLABLE", "The model version that answered."),
    (
        "response_text",
        "STRING",
        "NULLABLE",
        "The text of the first candidate, parts joined, thoughts left out.",
    ),
    (
        "response_json",
        "JSON",
        "NULLABLE",
        "The answer parsed as JSON when the request declared a response schema (and the answer matches it).",
    ),
    (
        "finish_reason",
        "STRING",
        "NULLABLE",
        "The first candidate's finish reason (STOP, MAX_TOKENS, SAFETY...).",
    ),
    ("prompt_tokens", "INT64", "NULLABLE", "usageMetadata.promptTokenCount."),
    ("output_tokens", "INT64", "NULLABLE", "usageMetadata.candidatesTokenCount."),
    ("total_tokens", "INT64", "NULLABLE", "usageMetadata.totalTokenCount."),
    ("status", "STRING", "REQUIRED", "succeeded, or blocked when the response has no candidate."),
    ("error", "STRING", "NULLABLE", "Why a blocked response has no candidate (promptFeedback.blockReason)."),
    ("job_name", "STRING", "REQUIRED", "The batch job that produced the row."),
    (
        "processed_time",
        "TIMESTAMP",
        "NULLABLE",
        "When the service processed the request (job end if not given).",
    ),
    ("loaded_at", "TIMESTAMP", "REQUIRED", "When the row was last written by the loader."),
)

#: The answers of an embeddings job (job_task.py): one vector per key and date, MERGEd like the
#: results (same key, date and bookkeeping columns); its failed rows go to embedding_errors.
EMBEDDINGS_SCHEMA: tuple[tuple[str, str, str, str], ...] = (
    (
        "key",
        "STRING",
        "REQUIRED",
        "The document's key (a pass-through column, a file line's key, or its position).",
    ),
    ("logical_date", "DATE", "REQUIRED", "The data interval the document belongs to (the DAG run's date)."),
    ("model", "STRING", "NULLABLE", "The embedding model of the job."),
    ("embedding", "FLOAT64", "REPEATED", "The vector, in the model's order."),
    ("dimension", "INT64", "NULLABLE", "The vector's length."),
    (
        "token_count",
        "INT64",
        "NULLABLE",
        "Input tokens (Vertex statistics.token_count, Gemini API usageMetadata.promptTokenCount).",
    ),
    ("status", "STRING", "REQUIRED", "succeeded."),
    ("job_name", "STRING", "REQUIRED", "The batch job that produced the row."),
    (
        "processed_time",
        "TIMESTAMP",
        "NULLABLE",
        "When the service processed the request (job end if not given).",
    ),
    ("loaded_at", "TIMESTAMP", "REQUIRED", "When the row was last written by the loader."),
)

ERRORS_SCHEMA: tuple[tuple[str, str, str, str], ...] = (
    ("key", "STRING", "REQUIRED", "The request's key."),
    ("logical_date", "DATE", "REQUIRED", "The data interval the request belongs to."),
    (
        "status",
        "STRING",
        "REQUIRED",
        "The service's status for the row (Vertex status text, Gemini API error status), or "
        "invalid_output (the answer is not JSON or does not match the request's response schema).",
    ),
    ("error_code", "INT64", "NULLABLE", "The Gemini API error code, when given."),
    ("error", "STRING", "NULLABLE", "The error message (invalid_output: the first problem, path and what)."),
    (
        "response_text",
        "STRING",
        "NULLABLE",
        "The answer's text when it was rejected (invalid_output: not JSON, or not matching the schema).",
    ),
    ("request", "JSON", "NULLABLE", "The request as the service echoed it (or as it was submitted)."),
    ("job_name", "STRING", "REQUIRED", "The batch job that produced the row."),
    (
        "processed_time",
        "TIMESTAMP",
        "NULLABLE",
        "When the service processed the request (job end if not given).",
    ),
    (
        "round",
        "INT64",
        "NULLABLE",
        "The failed-row retry round whose job last failed the row (0: the day's first jobs; NULL: "
        "written before rounds existed, read as 0).",
    ),
    ("loaded_at", "TIMESTAMP", "REQUIRED", "When the row was last written by the loader."),
)


#: Columns of an answers table the MERGE does not copy from the load: the MERGE key and its stamp.
_MERGE_KEY_AND_STAMP = ("key", "logical_date", "loaded_at")


def results_schema(task: JobTask) -> tuple[tuple[str, str, str, str], ...]:
    """The answers table of a job task: results (generate) or embeddings (embed)."""
    return EMBEDDINGS_SCHEMA if task == "embed" else RESULTS_SCHEMA


def answer_columns(task: JobTask) -> list[str]:
    """The columns merge_results.sql copies from the load into the answers table, in schema order."""
    return [name for name, *_ in results_schema(task) if name not in _MERGE_KEY_AND_STAMP]


def _schema(spec: Sequence[tuple[str, str, str, str]]) -> list[bigquery.SchemaField]:
    from google.cloud import bigquery

    return [bigquery.SchemaField(name, kind, mode=mode, description=text) for name, kind, mode, text in spec]


def ensure_results_tables(
    client: bigquery.Client,
    results: TableRef,
    errors: TableRef,
    results_spec: Sequence[tuple[str, str, str, str]] = RESULTS_SCHEMA,
) -> None:
    """Create the results and errors tables (and their dataset) if they do not exist; check their columns if they do.

    ``results_spec`` is the answers table's schema (:func:`results_schema`: results or embeddings).

    A NULLABLE column an existing table lacks (one added by a later version, e.g. errors.round) is
    added (:func:`add_nullable_columns`).

    :raises ValueError: An existing table lacks a REQUIRED column the loader writes (names table
        and column).
    """
    from google.cloud import bigquery

    for dataset in {f"{ref.project}.{ref.dataset}" for ref in (results, errors)}:
        client.create_dataset(dataset, exists_ok=True)
    for ref, spec in ((results, results_spec), (errors, ERRORS_SCHEMA)):
        table = bigquery.Table(ref.api_repr, schema=_schema(spec))
        table.time_partitioning = bigquery.TimePartitioning(field="logical_date")
        table.clustering_fields = ["key"]
        existing = client.create_table(table, exists_ok=True)
        missing = add_nullable_columns(
            client, ref, existing, [(name, kind, mode) for name, kind, mode, _ in spec]
        )
        if missing:
            raise ValueError(
                f"{ref.uri} exists without column(s) {', '.join(missing)} that the loader writes; "
                f"add them (ALTER TABLE ... ADD COLUMN) or point the loader at a new table"
            )


def add_nullable_columns(
    client: bigquery.Client, ref: TableRef, existing: Any, spec: Sequence[tuple[str, str, str]]
) -> list[str]:
    """Add to an existing table the NULLABLE columns of ``spec`` (name, type, mode) it lacks.

    ``ALTER TABLE ... ADD COLUMN IF NOT EXISTS``: DDL rather than a schema patch because the local
    BigQuery emulator applies a patched schema to its metadata only, and ``IF NOT EXISTS`` because
    it does not show an added column in the metadata it returns.

    :param existing: the table as ``create_table(..., exists_ok=True)`` returned it.
    :return: the REQUIRED columns it lacks (they cannot be added: the caller says what to do).
    """
    have = {field.name for field in existing.schema}
    absent = [(name, kind, mode) for name, kind, mode in spec if name not in have]
    for name, kind, mode in absent:
        if mode == "NULLABLE":
            client.query(f"ALTER TABLE {ref.sql} ADD COLUMN IF NOT EXISTS {name} {kind}").result()
    return [name for name, _, mode in absent if mode != "NULLABLE"]


@dataclass(frozen=True)
class LoadCounts:
    """What one load did, reconciled against the input.

    :param logical_date: The date loaded (ISO).
    :param jobs: How many job outputs were loaded.
    :param staged: Output rows read from the jobs (before removing repeats).
    :param input: Distinct input keys.
    :param succeeded: Input keys now in the results table for the date.
    :param failed: Input keys now in the errors table for the date.
    :param missing: Input keys in neither table (the load fails when this is not 0).
    :param duplicated: Input keys found more than once: in both tables, or twice in one (the load
        fails when this is not 0).
    :param unexpected: Output keys that are not input keys (a warning: the input reference is off).
    :param unkeyed: Output rows without a key (they cannot be matched to a request).
    :param invalid_output: Answers rejected by their response schema (not JSON, or not matching);
        they are among ``failed``, with status ``invalid_output``.
    :param retryable: Failed keys a failed-row retry round may resubmit (the loader's
        :class:`~gemini_batch.pipeline.row_retry.RowRetryPolicy` decides).
    :param stale: Keys of the date in results or errors that are not the day's input keys (only
        checked when the load is given the day's whole input; the load fails when this is not 0).
    :param round: The failed-row retry round of the load (0: the day's first jobs; rounds.py).
    :param answered: Keys this load's jobs answered (merged into results now); over the rounds of
        a day, their sum plus the day's ``failed`` is its ``input``.
    """

    logical_date: str
    jobs: int
    staged: int
    input: int
    succeeded: int
    failed: int
    missing: int
    duplicated: int
    unexpected: int
    unkeyed: int
    invalid_output: int = 0
    retryable: int = 0
    stale: int = 0
    round: int = 0
    answered: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LoadCounts:
        return cls(**data)


class ReconciliationError(RuntimeError):
    """Input keys are missing from the results and errors tables, or found there more than once.

    :param counts: The figures of the load.
    :param missing_sample: Some missing keys.
    :param duplicated_sample: Some keys found more than once.
    """

    def __init__(
        self,
        counts: LoadCounts,
        missing_sample: Sequence[str],
        duplicated_sample: Sequence[str] = (),
        stale_sample: Sequence[str] = (),
    ) -> None:
        self.counts = counts
        self.missing_sample = tuple(missing_sample)
        self.duplicated_sample = tuple(duplicated_sample)
        self.stale_sample = tuple(stale_sample)
        problems = []
        if counts.missing:
            problems.append(
                f"{counts.missing:,} of {counts.input:,} input keys have no row in results or errors for "
                f"{counts.logical_date} (sample: {', '.join(self.missing_sample)}); the job's output lacks "
                f"them (incomplete job, or keys lost on the way): re-run the job for this date"
            )
        if counts.duplicated:
            problems.append(
                f"{counts.duplicated:,} input keys are in results or errors more than once for "
                f"{counts.logical_date} (sample: {', '.join(self.duplicated_sample)}): in both tables, or "
                f"twice in one; remove the extra rows (the loader writes each key once) and re-run the load"
            )
        if counts.stale:
            problems.append(
                f"{counts.stale:,} keys in results or errors for {counts.logical_date} are not the day's "
                f"input keys (sample: {', '.join(self.stale_sample)}); the load deletes them, so another "
                f"writer added them since: re-run the load"
            )
        super().__init__("; ".join(problems) + f". Counts: {counts.to_dict()}")
