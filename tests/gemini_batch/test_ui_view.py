"""The Gemini batch view's pure parts: XCom decoding, progress, the per-day totals, the pages."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from gemini_batch.states import Counts
from gemini_batch.ui import pages
from gemini_batch.ui.jobs import DayTotals, JobRow, decode_xcom, per_day, progress
from gemini_batch.ui.samples import table_id

UTC = dt.timezone.utc


def row(manifest=None, *, when=None, ti_state="success", link="https://console/x", **kw) -> JobRow:
    values = {"dag_id": "d", "run_id": "r", "task_id": "t", "map_index": -1}
    values.update(kw)
    return JobRow(ti_state=ti_state, when=when, link=link, manifest=manifest, **values)


def manifest(total=10, succeeded=7, failed=1, tokens=None, **extra):
    counts = {
        "succeeded": succeeded,
        "failed": failed,
        "incomplete": total - succeeded - failed,
        "total": total,
    }
    return {"job_name": "batches/1", "backend": "gemini_api", "state": "JOB_STATE_RUNNING", "counts": counts,
            "tokens": tokens, **extra}  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ({"a": 1}, {"a": 1}),
        ('"https://x"', "https://x"),
        ("not json", "not json"),
        (None, None),
    ],
)
def test_decode_xcom(raw, expected):
    assert decode_xcom(raw) == expected


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        (None, None),
        (Counts(total=0), None),
        (Counts(succeeded=7, failed=1, incomplete=2, total=10), (70, 10)),
        (Counts(succeeded=10, failed=0, total=10), (100, 0)),
        (Counts(succeeded=0, failed=3, total=3), (0, 100)),
        (Counts(succeeded=2, failed=1, total=3), (67, 33)),
    ],
)
def test_progress_shares_of_done_and_failed_rows(counts, expected):
    assert progress(counts) == expected


@pytest.mark.parametrize(
    ("data", "state", "tokens"),
    [
        (manifest(tokens={"total": 42}), "JOB_STATE_RUNNING", 42),
        (manifest(), "JOB_STATE_RUNNING", None),
        (None, "deferred", None),  # the job runs: the task's state stands in for it
    ],
)
def test_row_reads_state_and_tokens_from_the_manifest(data, state, tokens):
    job = row(data, ti_state="deferred")
    assert (job.state, job.total_tokens) == (state, tokens)


@pytest.mark.parametrize(
    ("data", "cost", "shown"),
    [
        (manifest(estimated_cost_usd=0.0012345), 0.0012345, "$0.001234"),
        (manifest(estimated_cost_usd=12), 12.0, "$12.000000"),
        (manifest(), None, None),  # tokens not counted yet (a Vertex job before its load)
        (None, None, None),
    ],
)
def test_row_reads_the_estimated_cost_and_both_pages_show_it(data, cost, shown):
    job = row(data)
    assert job.estimated_cost_usd == cost
    for html in (
        pages.jobs_page([job], days=[], page=1, has_next=False),
        pages.job_page(job, sample=[], sample_note=""),
    ):
        assert (shown in html) if shown else ("$" not in html)


def test_row_console_prefers_the_manifest_console_url():
    assert row(manifest(console_url="https://aistudio")).console == "https://aistudio"
    assert row(None, link="http://view").console == "http://view"


def test_per_day_sums_rows_failures_and_tokens_by_utc_day_oldest_first():
    day1 = dt.datetime(2026, 1, 1, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-2)))  # Jan 2 UTC
    day2 = dt.datetime(2026, 1, 1, 10, tzinfo=UTC)
    rows = [
        row(manifest(tokens={"total": 5}, estimated_cost_usd=0.25), when=day1),
        row(manifest(total=4, succeeded=4, failed=0, estimated_cost_usd=0.5), when=day1),
        row(None, when=day2),
        row(manifest(), when=None),  # no time: left out
    ]
    assert per_day(rows) == [
        DayTotals(dt.date(2026, 1, 1), jobs=1, rows=0, failed=0, tokens=0),
        DayTotals(dt.date(2026, 1, 2), jobs=2, rows=14, failed=1, tokens=5, cost_usd=0.75),
    ]


def test_jobs_page_shows_progress_and_escapes_every_value():
    evil = "<script>alert(1)</script>"
    html = pages.jobs_page([row(manifest(), dag_id=evil)], days=[], page=1, has_next=True)
    assert evil not in html and "&lt;script&gt;" in html
    assert "8/10 rows, 1 failed" in html and "width:70%" in html
    assert "?page=2" in html and "?page=0" not in html


def test_jobs_page_says_what_to_do_with_no_jobs():
    assert "trigger gemini_batch_adhoc" in pages.jobs_page([], days=[], page=1, has_next=False)


def test_job_page_lists_the_table_sample_or_else_the_inline_answers_and_the_manifest_without_them():
    inline = [
        {"metadata": {"key": "k1"}, "response": {"candidates": [{"content": {"parts": [
            {"text": "thinking", "thought": True}, {"text": "Paris"}]}}]}},
        {"key": "k2", "error": {"code": 400, "message": "bad"}},
    ]  # fmt: skip
    job = row(manifest(inline_responses=inline))
    html = pages.job_page(job, sample=[("k0", "succeeded", "<b>x</b>")], sample_note="from t")
    assert "<td>k0</td><td>succeeded</td><td>&lt;b&gt;x&lt;/b&gt;</td>" in html
    assert "<td>k1</td>" not in html  # the loaded rows already hold the inline answers
    html = pages.job_page(job, sample=[], sample_note="not loaded")
    assert "<td>k1</td><td>succeeded</td><td>Paris</td>" in html
    assert "<td>k2</td><td>failed</td>" in html and "bad" in html
    assert "thinking" not in html
    manifest_text = html.split("<pre>")[1]
    assert "inline_responses" not in manifest_text and "batches/1" in manifest_text


def test_chart_scales_bars_to_the_largest_day():
    html = pages.chart(
        [DayTotals(dt.date(2026, 1, 1), 1, 10, 5, 100, 0.5), DayTotals(dt.date(2026, 1, 2), 1, 20, 0, 50)]
    )
    assert "width:25%" in html and "width:100%" in html and "width:50%" in html
    assert "$0.500000" in html and "$0.000000" in html


def test_job_href_quotes_the_run_id():
    assert pages.job_href(row(None, run_id="manual__2026-01-01T00:00:00+00:00")) == (
        "job?dag_id=d&run_id=manual__2026-01-01T00%3A00%3A00%2B00%3A00&task_id=t&map_index=-1"
    )


@pytest.mark.parametrize(("uri", "expected"), [("bq://p.d.t", "p.d.t"), ("p.d.t", "p.d.t")])
def test_table_id(uri, expected):
    assert table_id(uri) == expected


def test_manifest_json_is_valid():
    html = pages.job_page(row(manifest()), sample=[], sample_note="")
    text = html.split("<pre>")[1].split("</pre>")[0].replace("&quot;", '"')
    assert json.loads(text)["job_name"] == "batches/1"
