"""Request building: the template, the BigQuery requests table and JSONL export, server-side."""

from __future__ import annotations

import datetime as dt
import gc
import json
from pathlib import Path

import pytest

from gemini_batch.pipeline import sql
from gemini_batch.pipeline.builder import (
    RequestTemplate,
    build_bigquery_requests,
    export_requests_jsonl,
    set_expiry,
)
from gemini_batch.pipeline.jsonl_scan import scan_gcs_jsonl
from gemini_batch.pipeline.limits import JobLimits
from gemini_batch.pipeline.refs import TableRef
from local_stack.seed import PROMPTS_SQL, REQUEST_TEMPLATE, seed

INCLUDE = Path(__file__).resolve().parents[2] / "include"
DAY = dt.date(2026, 1, 1)
INTERVAL = {
    "interval_start": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    "interval_end": dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc),
}


# --- the template (unit) -----------------------------------------------------------------------


def test_shipped_templates_are_valid() -> None:
    for path in sorted((INCLUDE / "templates").glob("*.json")):
        template = RequestTemplate.from_file(path)
        assert "contents" in template.render("hi")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"contents": []}, "must not hold 'contents'"),
        ({"generationConfig": {"temperature": 5}}, "temperature must be a number from 0 to 2"),
        ({"generation_configs": {}}, "generation_configs is not a field of GenerateContentRequest"),
        ({"generationConfig": {"responseSchema": {"type": "OBJECT"}}}, "needs responseMimeType"),
    ],
)
def test_invalid_template_is_refused(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RequestTemplate.from_dict(fields)


def test_a_template_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(ValueError) as caught:
        RequestTemplate("[]")
    assert (
        str(caught.value) == "a request template is a JSON object (a GenerateContentRequest without contents)"
    )


def test_a_template_with_contents_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError) as caught:
        RequestTemplate.from_dict({"contents": []})
    assert str(caught.value) == "a request template must not hold 'contents': the prompt becomes the contents"


def test_every_problem_of_a_template_is_named_by_its_path_in_the_template() -> None:
    with pytest.raises(ValueError) as caught:
        RequestTemplate.from_dict({"generationConfig": {"temperature": 5}, "generation_configs": {}})
    message = str(caught.value)
    assert message.startswith("invalid request template: template.generationConfig.temperature ")
    assert "; template.generation_configs " in message


def test_a_template_is_canonical_json_whatever_the_key_order() -> None:
    instruction = {"parts": [{"text": "Be brief."}]}
    one = RequestTemplate.from_dict(
        {"systemInstruction": instruction, "generationConfig": {"temperature": 0.2}}
    )
    other = RequestTemplate.from_dict(
        {"generationConfig": {"temperature": 0.2}, "systemInstruction": instruction}
    )
    assert one == other and hash(one) == hash(other)
    # the suffix every request carries: compact, so no request pays for spaces
    assert (
        one.json_suffix()
        == ',"generationConfig":{"temperature":0.2},"systemInstruction":{"parts":[{"text":"Be brief."}]}'
    )
    assert RequestTemplate.from_dict({}).json_suffix() == ""


def test_template_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        RequestTemplate.from_file(path)


def test_generation_config_overrides_and_key_label() -> None:
    template = RequestTemplate.from_file(REQUEST_TEMPLATE).with_generation_config(temperature=0.9, topK=None)
    request = template.render("Why?", key="k-1")
    assert request["generationConfig"] == {"temperature": 0.9, "maxOutputTokens": 256}
    assert request["labels"] == {"gemini_batch_key": "k-1"}
    assert request["contents"] == [{"role": "user", "parts": [{"text": "Why?"}]}]


def test_generation_config_overrides_keep_the_templates_spelling() -> None:
    snake = RequestTemplate.from_dict({"generation_config": {"temperature": 0.1, "topK": 3}})
    assert snake.with_generation_config(temperature=0.5).fields == {
        "generation_config": {"temperature": 0.5, "topK": 3}
    }
    assert RequestTemplate.from_dict({}).with_generation_config(temperature=0.3).fields == {
        "generationConfig": {"temperature": 0.3}
    }


def test_the_key_label_joins_the_templates_own_labels() -> None:
    template = RequestTemplate.from_dict({"labels": {"team": "search"}})
    assert template.render("Why?", key="k-1")["labels"] == {"team": "search", "gemini_batch_key": "k-1"}
    assert template.render("Why?")["labels"] == {"team": "search"}


def test_set_expiry_patches_only_expires() -> None:
    class Client:
        def __init__(self) -> None:
            self.table = type("Table", (), {"expires": None})()
            self.updates: list[tuple[object, list[str]]] = []

        def get_table(self, name: str) -> object:
            return self.table

        def update_table(self, table: object, fields: list[str]) -> None:
            self.updates.append((table, fields))

    client = Client()
    set_expiry(client, TableRef("p", "d", "t"), dt.timedelta(days=14))  # type: ignore[arg-type]
    assert client.updates == [(client.table, ["expires"])]
    left = client.table.expires - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(days=13) < left <= dt.timedelta(days=14)


# --- server-side building (emulators) ------------------------------------------------------------


def seeded(bq_client, gcs_client, bq_dataset, gcs_bucket, rows: int = 40) -> TableRef:
    seed(
        rows=rows,
        dates=[DAY, DAY + dt.timedelta(days=1)],
        project=bq_client.project,
        dataset=bq_dataset.dataset_id,
        bucket=gcs_bucket.name,
        gcs=False,
        bigquery_client=bq_client,
        storage_client=gcs_client,
    )
    return TableRef(bq_client.project, bq_dataset.dataset_id, "prompts")


def prompts_sql(prompts: TableRef) -> str:
    return sql.render_file(PROMPTS_SQL, prompts_table=prompts.sql)


TRICKY = "He said \"hi\"\\n and left\n— naïve, 🚀, {braces}, 'quotes'"


@pytest.mark.integration
def test_bigquery_requests_table_matches_the_python_rendering(
    bq_client, gcs_client, bq_dataset, gcs_bucket
) -> None:
    prompts = seeded(bq_client, gcs_client, bq_dataset, gcs_bucket)
    sql.run(
        bq_client,
        f"INSERT INTO {prompts.sql} (id, prompt, created_at) VALUES (1, @p, @t)",
        p=TRICKY,
        t=dt.datetime(2026, 1, 1, 12, tzinfo=dt.timezone.utc),
    )
    template = RequestTemplate.from_file(INCLUDE / "templates" / "request_structured.json")
    requests = prompts.sibling("requests_20260101")
    count = build_bigquery_requests(
        bq_client,
        source_sql=prompts_sql(prompts),
        params=INTERVAL,
        destination=requests,
        template=template,
        expires=dt.timedelta(days=14),
    )
    assert (
        count == 41
    )  # (the emulator keeps no table expiry; test_set_expiry_patches_only_expires covers it)  # 40 seeded for the day and the tricky one; the next day's are not read
    rows = {
        r["key"]: r
        for r in sql.query_rows(
            bq_client,
            f"SELECT key, TO_JSON_STRING(request) AS request, "
            f"prompt FROM {requests.sql} JOIN "
            f"(SELECT CAST(id AS STRING) AS key, prompt FROM {prompts.sql}) "
            f"USING (key)",
        )
    }
    assert len(rows) == 41
    for key, row in rows.items():
        assert json.loads(row["request"]) == template.render(row["prompt"]), key
    assert json.loads(rows["1"]["request"])["contents"][0]["parts"][0]["text"] == TRICKY
    # a re-run rebuilds the table: same rows, not twice as many
    assert (
        build_bigquery_requests(
            bq_client,
            source_sql=prompts_sql(prompts),
            params=INTERVAL,
            destination=requests,
            template=template,
        )
        == 41
    )


@pytest.mark.integration
@pytest.mark.parametrize("input_format", ["vertex_jsonl", "gemini_jsonl"])
def test_jsonl_export_is_valid_and_carries_the_key(
    bq_client, gcs_client, bq_dataset, gcs_bucket, input_format
) -> None:
    prompts = seeded(bq_client, gcs_client, bq_dataset, gcs_bucket, rows=30)
    template = RequestTemplate.from_file(REQUEST_TEMPLATE)
    uri = f"gs://{gcs_bucket.name}/built/{input_format}.jsonl"
    files = export_requests_jsonl(
        bq_client,
        gcs_client,
        source_sql=prompts_sql(prompts),
        params=INTERVAL,
        destination=uri,
        template=template,
        input_format=input_format,
        page_size=7,
    )
    assert [(f.uri, f.requests) for f in files] == [(uri, 30)]
    scan = scan_gcs_jsonl(uri, storage_client=gcs_client, input_format=input_format)
    assert (scan.requests, scan.bytes) == (30, files[0].bytes)
    lines = [
        json.loads(line)
        for line in gcs_client.bucket(gcs_bucket.name)
        .blob(f"built/{input_format}.jsonl")
        .download_as_bytes()
        .splitlines()
    ]
    keys = [
        line["key"] if input_format == "gemini_jsonl" else line["request"]["labels"]["gemini_batch_key"]
        for line in lines
    ]
    assert keys == sorted(keys) and keys[0] == "20260101000000"
    first = lines[0]["request"]
    if input_format == "gemini_jsonl":
        assert first == template.render("Explain photosynthesis in one sentence.")
    else:
        assert first == template.render("Explain photosynthesis in one sentence.", key="20260101000000")


@pytest.mark.integration
def test_jsonl_export_rolls_over_into_shards_under_the_limits(
    bq_client, gcs_client, bq_dataset, gcs_bucket
) -> None:
    prompts = seeded(bq_client, gcs_client, bq_dataset, gcs_bucket, rows=25)
    template = RequestTemplate.from_file(REQUEST_TEMPLATE)
    limits = JobLimits(max_requests=10, max_bytes=10**9)
    prefix = f"gs://{gcs_bucket.name}/built/sharded"
    files = export_requests_jsonl(
        bq_client,
        gcs_client,
        source_sql=prompts_sql(prompts),
        params=INTERVAL,
        destination=prefix,
        template=template,
        limits=limits,
        page_size=4,
    )
    assert [f.requests for f in files] == [10, 10, 5]
    assert [f.uri.rsplit("/", 1)[1] for f in files] == [
        "requests-00000.jsonl",
        "requests-00001.jsonl",
        "requests-00002.jsonl",
    ]
    with pytest.raises(ValueError, match="exceed the Vertex AI batch limits .* give a prefix to shard"):
        export_requests_jsonl(
            bq_client,
            gcs_client,
            source_sql=prompts_sql(prompts),
            params=INTERVAL,
            destination=f"{prefix}/one.jsonl",
            template=template,
            limits=limits,
        )
    gc.collect()  # a dropped BlobWriter closes, so finishes its upload, when collected
    assert gcs_client.bucket(gcs_bucket.name).get_blob("built/sharded/one.jsonl") is None


def test_keep_by_content_publishes_once_per_content_and_drops_the_built_table() -> None:
    from google.cloud import bigquery

    from gemini_batch.pipeline.builder import keep_by_content

    from .duck_bigquery import DuckBigQuery

    bq = DuckBigQuery()
    bq.create_dataset("proj.ds")

    def built(name: str, prompts: list[str]) -> TableRef:
        ref = TableRef("proj", "ds", name)
        bq.create_table(bigquery.Table(ref.api_repr, schema=[
            bigquery.SchemaField("key", "STRING"), bigquery.SchemaField("request", "JSON"),
        ]))  # fmt: skip
        bq.insert(ref.uri, [{"key": str(i), "request": {"text": p}} for i, p in enumerate(prompts)])
        return ref

    first, fingerprint = keep_by_content(bq, built("b1", ["a", "b"]), name="requests_20260101",
                                         expires=dt.timedelta(days=2))  # fmt: skip
    assert first == TableRef("proj", "ds", f"requests_20260101_{fingerprint}")
    assert bq.table_names("proj.ds") == {first.table}  # the built table is dropped
    same, again = keep_by_content(bq, built("b2", ["a", "b"]), name="requests_20260101")
    changed, other = keep_by_content(bq, built("b3", ["a", "c"]), name="requests_20260101")
    assert (same, again) == (first, fingerprint) and other != fingerprint
    assert bq.table_names("proj.ds") == {first.table, changed.table}
    assert [row["request"] for row in bq.rows(changed.uri)] == [{"text": "a"}, {"text": "c"}]


def test_keep_by_content_tolerates_a_built_table_another_try_already_dropped() -> None:
    from google.cloud import bigquery

    from gemini_batch.pipeline.builder import keep_by_content

    from .duck_bigquery import DuckBigQuery

    built = TableRef("proj", "ds", "built")

    class OverlappingTry(DuckBigQuery):
        """Another try of the same task publishes the same table and drops the built one meanwhile."""

        def update_table(self, table: bigquery.Table, fields: list[str]) -> bigquery.Table:
            self.delete_table(built.api_repr)
            return super().update_table(table, fields)

    bq = OverlappingTry()
    bq.create_table(bigquery.Table(built.api_repr, schema=[
        bigquery.SchemaField("key", "STRING"), bigquery.SchemaField("request", "JSON"),
    ]))  # fmt: skip
    bq.insert(built.uri, [{"key": "1", "request": {"text": "a"}}])
    published, fingerprint = keep_by_content(bq, built, name="requests", expires=dt.timedelta(days=2))
    assert published == TableRef("proj", "ds", f"requests_{fingerprint}")
    assert bq.table_names("proj.ds") == {published.table}


def test_keep_by_content_fingerprints_the_column_named_for_a_documents_table() -> None:
    from google.cloud import bigquery

    from gemini_batch.pipeline.builder import keep_by_content

    from .duck_bigquery import DuckBigQuery

    bq = DuckBigQuery()

    def built(name: str, contents: list[str]) -> TableRef:
        ref = TableRef("proj", "ds", name)
        bq.create_table(bigquery.Table(ref.api_repr, schema=[
            bigquery.SchemaField("key", "STRING"), bigquery.SchemaField("content", "STRING"),
        ]))  # fmt: skip
        bq.insert(ref.uri, [{"key": str(i), "content": c} for i, c in enumerate(contents)])
        return ref

    first, one = keep_by_content(bq, built("d1", ["a", "b"]), name="documents", request_column="content")
    _, same = keep_by_content(bq, built("d2", ["a", "b"]), name="documents", request_column="content")
    _, other = keep_by_content(bq, built("d3", ["a", "c"]), name="documents", request_column="content")
    assert first == TableRef("proj", "ds", f"documents_{one}")
    assert same == one and other != one
