"""Server-rendered HTML of the Gemini batch view: pure functions from rows to a page.

Invariants: every value from the DB or a manifest is escaped (:func:`html.escape`); a page is
self-contained (inline CSS, no script, no build step) and works offline; links into the view are
relative to the view's mount point, so a page works behind any base URL.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape
from typing import Any
from urllib.parse import urlencode

from gemini_batch.ui.jobs import DayTotals, JobRow, progress

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1f2933}
table{border-collapse:collapse;width:100%}th,td{padding:.35rem .5rem;border-bottom:1px solid #e4e7eb;
text-align:left;font-size:.9rem;vertical-align:top}th{background:#f5f7fa}
.bar{width:10rem;height:.8rem;background:#e4e7eb;display:flex;border-radius:3px;overflow:hidden}
.ok{background:#3ebd93}.ko{background:#e66a6a}.tok{background:#6b8afd}
.muted{color:#7b8794}pre{background:#f5f7fa;padding:.75rem;overflow:auto;font-size:.8rem}
.chart td{padding:.15rem .5rem}.chart .bar{width:20rem}
"""


def job_href(row: JobRow) -> str:
    """The job page's address, relative to the view's root."""
    query = {"dag_id": row.dag_id, "run_id": row.run_id, "task_id": row.task_id, "map_index": row.map_index}
    return "job?" + urlencode(query)


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )


def progress_cell(row: JobRow) -> str:
    """The progress bar and its text (``7/10 rows, 1 failed``), or a dash when counts are unknown."""
    counts = row.counts
    shares = progress(counts)
    if counts is None or shares is None:
        return "<span class='muted'>-</span>"
    done, failed = shares
    text = f"{counts.processed:,}/{counts.total:,} rows"
    if counts.failed:
        text += f", {counts.failed:,} failed"
    return (
        f"<div class='bar' title='{escape(text)}'><div class='ok' style='width:{done}%'></div>"
        f"<div class='ko' style='width:{failed}%'></div></div><span class='progress'>{escape(text)}</span>"
    )


def _link(url: str | None, text: str) -> str:
    if not url or not url.startswith(("https://", "http://")):
        return "<span class='muted'>-</span>"
    return f"<a href='{escape(url)}' target='_blank' rel='noopener'>{escape(text)}</a>"


def _tokens(value: int | None) -> str:
    return f"{value:,}" if value is not None else "<span class='muted'>-</span>"


def _cost(value: float | None) -> str:
    """An estimated cost in USD (batch prices), or a dash when unknown (tokens not yet counted)."""
    return f"${value:,.6f}" if value is not None else "<span class='muted'>-</span>"


def jobs_page(rows: Sequence[JobRow], *, days: Sequence[DayTotals], page: int, has_next: bool) -> str:
    """The list of jobs (newest first) and the per-day chart of the rows shown."""
    head = "<tr><th>Job</th><th>Backend</th><th>State</th><th>Progress</th><th>Tokens</th><th>Est. cost</th><th>DAG run / task</th><th>Console</th></tr>"
    lines = []
    for row in rows:
        name = row.job_name or "(running)"
        task = row.task_id if row.map_index < 0 else f"{row.task_id}[{row.map_index}]"
        lines.append(
            f"<tr class='job'><td><a href='{escape(job_href(row))}'>{escape(name)}</a></td>"
            f"<td>{escape(row.backend or '-')}</td><td class='state'>{escape(row.state)}</td>"
            f"<td>{progress_cell(row)}</td><td>{_tokens(row.total_tokens)}</td>"
            f"<td>{_cost(row.estimated_cost_usd)}</td><td>{escape(row.dag_id)} / {escape(row.run_id)} / {escape(task)}</td>"
            f"<td>{_link(row.console, 'open')}</td></tr>"
        )
    if not lines:
        lines.append(
            "<tr><td colspan='8' class='muted'>No batch jobs yet: trigger gemini_batch_adhoc.</td></tr>"
        )
    nav = []
    if page > 1:
        nav.append(f"<a href='?page={page - 1}'>newer</a>")
    if has_next:
        nav.append(f"<a href='?page={page + 1}'>older</a>")
    body = (
        f"<table id='jobs'>{head}{''.join(lines)}</table><p>{' | '.join(nav)}</p>"
        f"<h2>Per day (jobs on this page)</h2>{chart(days)}"
    )
    return _page("Gemini batch jobs", body)


def chart(days: Sequence[DayTotals]) -> str:
    """Rows, failed rows and tokens per day as bars scaled to the largest day of each measure,
    and the day's known estimated cost."""
    if not days:
        return "<p class='muted'>No data.</p>"
    top_rows = max(d.rows for d in days) or 1
    top_tokens = max(d.tokens for d in days) or 1
    lines = []
    for d in days:
        lines.append(
            f"<tr><td>{d.day.isoformat()}</td><td>{d.jobs} jobs</td>"
            f"<td><div class='bar'><div class='ok' style='width:{round(100 * (d.rows - d.failed) / top_rows)}%'>"
            f"</div><div class='ko' style='width:{round(100 * d.failed / top_rows)}%'></div></div></td>"
            f"<td>{d.rows:,} rows, {d.failed:,} failed</td>"
            f"<td><div class='bar'><div class='tok' style='width:{round(100 * d.tokens / top_tokens)}%'>"
            f"</div></div></td><td>{d.tokens:,} tokens</td><td>{_cost(d.cost_usd)}</td></tr>"
        )
    return f"<table class='chart'>{''.join(lines)}</table>"


def _answer_text(item: dict[str, Any]) -> str:
    """The text of an inline response's first candidate (thoughts left out), else its error."""
    if item.get("error"):
        return json.dumps(item["error"])
    candidates = (item.get("response") or {}).get("candidates") or []
    if not candidates:
        return ""
    parts = (candidates[0].get("content") or {}).get("parts") or []
    return "".join(p.get("text", "") for p in parts if not p.get("thought"))


def job_page(
    row: JobRow, *, sample: Sequence[tuple[str, str, str]], sample_note: str, limit: int = 20
) -> str:
    """One job: its state and progress, a sample of answers and errors, and its manifest.

    The sample comes from the results tables; without one, from the manifest's inline responses.

    :param sample: (key, status, text) rows from the results and errors tables.
    :param sample_note: where the sample comes from, or why there is none.
    """
    manifest = dict(row.manifest or {})
    inline = manifest.pop("inline_responses", None) or []
    answers = list(sample)
    # The tables hold the loaded rows; before a load, the inline responses are the only answers.
    for item in inline[:limit] if not answers else []:
        key = (item.get("metadata") or {}).get("key") or item.get("key") or ""
        answers.append((str(key), "failed" if item.get("error") else "succeeded", _answer_text(item)))
    answer_rows = "".join(
        f"<tr class='answer'><td>{escape(k)}</td><td>{escape(s)}</td><td>{escape(t)}</td></tr>"
        for k, s, t in answers[:limit]
    )
    summary = (
        f"<table><tr><th>State</th><td class='state'>{escape(row.state)}</td></tr>"
        f"<tr><th>Progress</th><td>{progress_cell(row)}</td></tr>"
        f"<tr><th>Tokens</th><td>{_tokens(row.total_tokens)}</td></tr>"
        f"<tr><th>Estimated cost</th><td>{_cost(row.estimated_cost_usd)}</td></tr>"
        f"<tr><th>Backend</th><td>{escape(row.backend or '-')}</td></tr>"
        f"<tr><th>DAG run / task</th><td>{escape(row.dag_id)} / {escape(row.run_id)} / {escape(row.task_id)}</td></tr>"
        f"<tr><th>Console</th><td>{_link(row.console, row.console or '')}</td></tr>"
        f"<tr><th>Error</th><td>{escape(str(manifest.get('error') or '-'))}</td></tr></table>"
    )
    body = (
        f"<p><a href='./'>all jobs</a></p>{summary}<h2>Answers and errors</h2>"
        f"<p class='muted'>{escape(sample_note)}</p>"
        f"<table id='answers'><tr><th>Key</th><th>Status</th><th>Text</th></tr>{answer_rows}</table>"
        f"<h2>Manifest</h2><pre>{escape(json.dumps(manifest, indent=2, default=str))}</pre>"
    )
    return _page(row.job_name or f"{row.dag_id} / {row.task_id}", body)
