"""A sample of some jobs' answers and failed rows, read back from the results and errors tables.

One query serves both readers: ``load_results`` logs the sample as a short table once it has
loaded a run, and the Gemini batch view shows it on a job's page.

Invariants: one bounded query (``LIMIT``) per call, rows selected by job name (a query parameter
each, never text pasted into the SQL), answers before failures, then by key; the table is one
line per row whatever the answer holds (newlines and long text are shortened), so a log stays
readable; :func:`log_answer_sample` never fails the caller's work: a read error is a warning.
"""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

#: Rows in a sample (the view's page and the task log).
SAMPLE_ROWS = 10
#: Characters of an answer or an error shown in the log's table.
TEXT_WIDTH = 72

SAMPLE_SQL = """
SELECT key, status, response_text AS text FROM `{results}` WHERE job_name IN ({names})
UNION ALL
SELECT key, status, error AS text FROM `{errors}` WHERE job_name IN ({names})
ORDER BY status DESC, key
LIMIT {limit}
"""


@dataclass(frozen=True)
class SampleRow:
    """One row of a sample: the request's key, its status, the answer or the error."""

    key: str
    status: str
    text: str


def table_id(uri: str) -> str:
    """``project.dataset.table`` of a ``bq://`` URI (as BigQuery SQL names it)."""
    return uri.removeprefix("bq://")


def sample_sql(results: str, errors: str, job_count: int, limit: int = SAMPLE_ROWS) -> str:
    """The sample query over ``job_count`` job names, bound as ``@job_0`` .. ``@job_<n-1>``."""
    names = ", ".join(f"@job_{index}" for index in range(job_count))
    return SAMPLE_SQL.format(
        results=table_id(results), errors=table_id(errors), names=names, limit=int(limit)
    )


def read_sample(
    client: Any, *, results: str, errors: str, job_names: Sequence[str], limit: int = SAMPLE_ROWS
) -> list[SampleRow]:
    """Up to ``limit`` rows of the jobs ``job_names`` from the ``bq://`` tables ``results`` and ``errors``.

    :param client: a ``google.cloud.bigquery.Client``.
    """
    from google.cloud import bigquery

    names = [name for name in job_names if name]
    if not names:
        return []
    config = bigquery.QueryJobConfig(
        query_parameters=[
            bigquery.ScalarQueryParameter(f"job_{index}", "STRING", name) for index, name in enumerate(names)
        ]
    )
    sql = sample_sql(results, errors, len(names), limit)
    return [
        SampleRow(str(row["key"]), str(row["status"]), str(row["text"] or ""))
        for row in client.query(sql, job_config=config).result()
    ]


def format_sample(rows: Sequence[SampleRow], *, width: int = TEXT_WIDTH) -> str:
    """The rows as a plain-text table (key, status, text), one line each; "" for no rows."""
    if not rows:
        return ""
    key_width = max(len("key"), *(len(row.key) for row in rows))
    status_width = max(len("status"), *(len(row.status) for row in rows))
    lines = [f"{'key':<{key_width}}  {'status':<{status_width}}  answer or error"]
    for row in rows:
        text = (
            textwrap.shorten(" ".join(row.text.split()), width=width, placeholder="...") if row.text else ""
        )
        lines.append(f"{row.key:<{key_width}}  {row.status:<{status_width}}  {text}")
    return "\n".join(lines)


def log_answer_sample(client: Any, *, results: str, errors: str, job_names: Sequence[str]) -> None:
    """Log a sample of the jobs' answers as a short table; a failure to read is only a warning."""
    try:
        rows = read_sample(client, results=results, errors=errors, job_names=job_names)
    except Exception as err:  # noqa: BLE001 - the results are loaded; the sample is a courtesy
        log.warning("could not read a sample of the answers from %s: %s", results, err)
        return
    if rows:
        log.info(
            "a sample of the answers (up to %d rows of %s):\n%s", SAMPLE_ROWS, results, format_sample(rows)
        )
