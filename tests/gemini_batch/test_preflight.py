"""Pre-flight: the pure decisions by table, the reads against small fakes, the operator's wiring."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from google.api_core.exceptions import NotFound

from gemini_batch import preflight
from gemini_batch.create_plan import CreateArguments, plan_create
from gemini_batch.exceptions import GeminiBatchPreflightError
from gemini_batch.identity import WorkIdentity
from gemini_batch.preflight import (
    CloudReads,
    TableId,
    bigquery_project_of,
    bigquery_table_of,
    check,
    cross_project_problems,
    model_verdict,
    problems,
)
from tests.gemini_batch.fakes import FakeReads, api_error

IDENTITY = WorkIdentity("dag", "task", "run")
INLINE = [{"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}]


def plan(src: Any, model: str = "gemini-2.5-flash") -> Any:
    return plan_create(CreateArguments(src=src, model=model), IDENTITY)


@pytest.mark.parametrize(
    ("uri", "table"),
    [
        ("bq://p.d.t", TableId("p", "d", "t")),
        ("bq://p.d", None),
        ("bq://p", None),
        ("bq://p..t", None),
        ("gs://bkt/o.jsonl", None),
        (None, None),
    ],
)
def test_bigquery_table_of(uri, table):
    assert bigquery_table_of(uri) == table


@pytest.mark.parametrize(
    ("uri", "project"),
    [("bq://p.d.t", "p"), ("bq://p", "p"), ("bq://", None), ("gs://p/x", None), (None, None)],
)
def test_bigquery_project_of(uri, project):
    assert bigquery_project_of(uri) == project


@pytest.mark.parametrize(
    ("sources", "dest", "project", "allow", "refused"),
    [
        (["bq://p.d.t"], "bq://p.d", "p", False, []),
        (["bq://other.d.t"], None, "p", False, ["source"]),
        (["bq://p.d.t"], "bq://other.d", "p", False, ["dest"]),
        (["bq://other.d.t"], "bq://other", "p", False, ["source", "dest"]),
        (["bq://other.d.t"], "bq://other", "p", True, []),
        (["gs://other/a.jsonl"], "gs://other/out", "p", False, []),  # buckets have no project in their URI
        (["bq://other.d.t"], None, None, False, []),  # no job project known: nothing to compare
    ],
)
def test_cross_project_problems(sources, dest, project, allow, refused):
    found = cross_project_problems(sources, dest, project, allow_cross_project=allow)
    assert [problem.split()[1] for problem in found] == refused
    for problem in found:
        assert "allow_cross_project=True" in problem and "'other'" in problem


@pytest.mark.parametrize(
    ("answer", "well_known", "verdict"),
    [
        ("found", [], "ok"),
        ("unknown", [], "skip"),
        ("not_found", ["found"], "missing"),
        ("not_found", ["not_found", "found"], "missing"),
        ("not_found", ["not_found", "not_found"], "skip"),  # an endpoint without a models API
        ("not_found", ["unknown"], "skip"),
        ("not_found", [], "skip"),
    ],
)
def test_model_verdict(answer, well_known, verdict):
    assert model_verdict(answer, well_known) == verdict


CASES = [
    # (name, src, dest, reads, expected problem fragments)
    ("bq source exists, new dest", "bq://p.d.t", "bq://p.d.out", FakeReads(missing_tables={"p.d.out"}), []),
    ("bq source missing", "bq://p.d.t", None, FakeReads(missing_tables={"p.d.t"}), ["source table bq://p.d.t does not exist"]),
    ("dest table exists", "bq://p.d.t", "bq://p.d.out", FakeReads(existing_tables={"p.d.out"}), ["dest table bq://p.d.out already exists"]),
    ("dest dataset: never read", "bq://p.d.t", "bq://p.d", FakeReads(existing_tables={"p.d"}), []),
    ("dest project: never read", "bq://p.d.t", "bq://p", FakeReads(), []),
    ("gs object missing", "gs://bkt/in.jsonl", None, FakeReads(missing_objects={"gs://bkt/in.jsonl"}), ["gs://bkt/in.jsonl does not exist"]),
    ("gs wildcard matches nothing", "gs://bkt/in/*.jsonl", None, FakeReads(missing_objects={"gs://bkt/in/*.jsonl"}), ["gs://bkt/in/*.jsonl matches no object"]),
    ("one of two gs objects missing", ["gs://bkt/a.jsonl", "gs://bkt/b.jsonl"], None, FakeReads(missing_objects={"gs://bkt/b.jsonl"}), ["gs://bkt/b.jsonl does not exist"]),
    ("gemini file missing", "files/abc", None, FakeReads(file_problems={"files/abc": "The Gemini API file files/abc does not exist"}), ["files/abc does not exist"]),
    ("inline: only the model", INLINE, None, FakeReads(), []),
    ("typo'd model", "bq://p.d.t", None, FakeReads(models={"gemini-2.5-flsh": "not_found"}), ["model 'gemini-2.5-flsh' does not exist on vertex"]),
    ("no models API at all", "bq://p.d.t", None, FakeReads(models={"gemini-2.5-flsh": "not_found", "gemini-2.5-flash": "not_found", "gemini-2.0-flash-001": "not_found"}), []),
    (
        "everything wrong at once",
        "bq://p.d.t",
        "bq://p.d.out",
        FakeReads(missing_tables={"p.d.t"}, existing_tables={"p.d.out"}, models={"gemini-2.5-flsh": "not_found"}),
        ["source table", "dest table", "model"],
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("src", "dest", "reads", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_problems(src, dest, reads, expected):
    model = "gemini-2.5-flsh" if any("flsh" in m for m in reads.models) else "gemini-2.5-flash"
    found = problems(plan(src, model), dest, reads, project="p", allow_cross_project=False)
    assert len(found) == len(expected)
    for problem, fragment in zip(found, expected, strict=True):
        assert fragment in problem


def test_the_model_is_probed_against_well_known_models_only_when_not_found():
    reads = FakeReads()
    problems(plan("bq://p.d.t"), None, reads, project="p", allow_cross_project=False)
    assert [r for r in reads.reads if r[0] == "model"] == [("model", "gemini-2.5-flash")]
    reads = FakeReads(models={"gemini-2.5-flash": "not_found"})
    problems(plan("bq://p.d.t"), None, reads, project="p", allow_cross_project=False)
    assert [r[1] for r in reads.reads if r[0] == "model"] == ["gemini-2.5-flash", "gemini-2.0-flash-001"]


def test_check_raises_one_error_listing_every_problem():
    reads = FakeReads(missing_tables={"p.d.t"}, existing_tables={"p.d.out"})
    with pytest.raises(GeminiBatchPreflightError, match="2 problem") as caught:
        check(plan("bq://p.d.t"), "bq://p.d.out", reads, project="p", allow_cross_project=False)
    assert "- The source table" in str(caught.value) and "- The dest table" in str(caught.value)
    assert "pass dest='bq://p.d'" in str(caught.value)
    check(
        plan("bq://p.d.t"),
        "bq://p.d.new",
        FakeReads(missing_tables={"p.d.new"}),
        project="p",
        allow_cross_project=False,
    )


# --- CloudReads against small client fakes ------------------------------------------------------


class Tables:
    def __init__(self, existing: set[str]):
        self.existing = existing

    def get_table(self, table: str) -> Any:
        if table not in self.existing:
            raise NotFound(f"Not found: Table {table}")
        return SimpleNamespace(table_id=table)


class Storage:
    def __init__(self, names: list[str]):
        self.names = names
        self.prefixes: list[str] = []

    def bucket(self, bucket: str) -> Any:
        return SimpleNamespace(blob=lambda name: SimpleNamespace(exists=lambda: name in self.names))

    def list_blobs(self, bucket: str, prefix: str) -> list[Any]:
        self.prefixes.append(prefix)
        return [SimpleNamespace(name=n) for n in self.names if n.startswith(prefix)]


class Genai:
    def __init__(self, models: dict[str, BaseException | None], files: dict[str, Any]):
        self.model_calls: list[str] = []

        def get_model(model: str) -> Any:
            self.model_calls.append(model)
            if models.get(model) is not None:
                raise models[model]  # type: ignore[misc]
            return SimpleNamespace(name=model)

        def get_file(name: str) -> Any:
            if isinstance(files.get(name), BaseException):
                raise files[name]
            return files[name]

        self.models = SimpleNamespace(get=get_model)
        self.files = SimpleNamespace(get=get_file)


@pytest.fixture(autouse=True)
def _fresh_model_cache():
    preflight.clear_model_cache()
    yield
    preflight.clear_model_cache()


def cloud(genai: Genai | None = None, **kwargs: Any) -> CloudReads:
    client = genai or Genai({}, {})
    return CloudReads(genai_client=lambda: client, cache_key=("vertex", None), **kwargs)


def test_cloud_reads_tables():
    reads = cloud(bigquery_client=lambda: Tables({"p.d.t"}))
    assert reads.table_exists(TableId("p", "d", "t")) is True
    assert reads.table_exists(TableId("p", "d", "missing")) is False


@pytest.mark.parametrize(
    ("uri", "matches"),
    [
        ("gs://bkt/in/a.jsonl", True),
        ("gs://bkt/in/c.jsonl", False),
        ("gs://bkt/in/*.jsonl", True),
        ("gs://bkt/in/x*.jsonl", False),
        ("gs://bkt/out/*.jsonl", False),
        ("gs://bkt/in/*", True),
    ],
)
def test_cloud_reads_gcs_objects_and_wildcards(uri, matches):
    storage = Storage(["in/a.jsonl", "in/b.txt", "out/readme.md"])
    assert cloud(storage_client=lambda: storage).gcs_matches(uri) is matches


def test_a_wildcard_is_listed_by_its_literal_prefix():
    storage = Storage(["in/a.jsonl"])
    cloud(storage_client=lambda: storage).gcs_matches("gs://bkt/in/part-*.jsonl")
    assert storage.prefixes == ["in/part-"]


def test_cloud_reads_files():
    genai = Genai(
        {},
        {
            "files/ok": SimpleNamespace(state="ACTIVE"),
            "files/bad": SimpleNamespace(state="FAILED"),
            "files/gone": api_error(404),
            "files/theirs": api_error(403),
        },
    )
    reads = cloud(genai)
    assert reads.file_problem("files/ok") is None
    assert "is FAILED" in reads.file_problem("files/bad")
    assert "does not exist" in reads.file_problem("files/gone")
    assert "does not exist or belongs to another API key" in reads.file_problem("files/theirs")
    genai = Genai({}, {"files/x": api_error(503)})
    with pytest.raises(Exception, match="503"):
        cloud(genai).file_problem("files/x")


def test_cloud_reads_models_once_per_model_per_process():
    genai = Genai({"gemini-2.5-flsh": api_error(404)}, {})
    reads = cloud(genai)
    assert reads.model("gemini-2.5-flash") == "found"
    assert reads.model("gemini-2.5-flsh") == "not_found"
    assert cloud(genai).model("gemini-2.5-flash") == "found"  # another reads object, same process
    assert reads.model("gemini-2.5-flsh") == "not_found"
    assert genai.model_calls == ["gemini-2.5-flash", "gemini-2.5-flsh"]


def test_an_unusable_models_answer_is_unknown_and_asked_again():
    genai = Genai({"gemini-2.5-flash": api_error(503)}, {})
    reads = cloud(genai)
    assert reads.model("gemini-2.5-flash") == "unknown"
    assert reads.model("gemini-2.5-flash") == "unknown"
    assert genai.model_calls == ["gemini-2.5-flash", "gemini-2.5-flash"]
    assert cloud(Genai({"m": api_error(403)}, {})).model("m") == "unknown"


def test_models_answers_are_cached_per_endpoint():
    genai = Genai({}, {})
    cloud(genai).model("gemini-2.5-flash")
    CloudReads(genai_client=lambda: genai, cache_key=("gemini_api", None)).model("gemini-2.5-flash")
    assert genai.model_calls == ["gemini-2.5-flash", "gemini-2.5-flash"]


# --- whole messages and log lines (each names what to change) --------------------------------------


class Log:
    """Records the operator log's calls as ``(level, message, *args)``."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def info(self, *args: Any) -> None:
        self.calls.append(("info", *args))

    def warning(self, *args: Any) -> None:
        self.calls.append(("warning", *args))


MESSAGES = [
    (
        "source table missing",
        "bq://p.d.t",
        None,
        FakeReads(missing_tables={"p.d.t"}),
        "The source table bq://p.d.t does not exist. Create it, or fix the project, dataset or table name in src.",
    ),
    (
        "dest table exists",
        "bq://p.d.t",
        "bq://p.d.out",
        FakeReads(existing_tables={"p.d.out"}),
        "The dest table bq://p.d.out already exists; Vertex AI writes only to a new table. Name a table that "
        "does not exist, drop it, or pass dest='bq://p.d' and let Vertex AI name one.",
    ),
    (
        "dest in another project",
        "bq://p.d.t",
        "bq://q.d.out",
        FakeReads(missing_tables={"q.d.out"}),
        "The dest bq://q.d.out is in project 'q', not in the job's project 'p'. Use a table of 'p', run the "
        "job in 'q' (project_id=), or pass allow_cross_project=True if the job's service account may read "
        "and write there.",
    ),
    (
        "unknown model",
        "bq://p.d.t",
        None,
        FakeReads(models={"gemini-2.5-flsh": "not_found"}),
        "The model 'gemini-2.5-flsh' does not exist on vertex. Fix the model name (e.g. 'gemini-2.5-flash'); "
        "the models list of the service shows which exist.",
    ),
]


@pytest.mark.parametrize(
    ("src", "dest", "reads", "message"), [c[1:] for c in MESSAGES], ids=[c[0] for c in MESSAGES]
)
def test_each_problem_is_one_whole_sentence(src, dest, reads, message):
    model = "gemini-2.5-flsh" if any("flsh" in m for m in reads.models) else "gemini-2.5-flash"
    assert problems(plan(src, model), dest, reads, project="p", allow_cross_project=False) == [message]


def test_the_error_lists_problems_one_per_line():
    reads = FakeReads(missing_tables={"p.d.t"}, models={"gemini-2.5-flsh": "not_found"})
    with pytest.raises(GeminiBatchPreflightError) as caught:
        check(plan("bq://p.d.t", "gemini-2.5-flsh"), None, reads, project="p", allow_cross_project=False)
    assert str(caught.value) == (
        "Not submitting the batch job: 2 problem(s) found before creating it (no job exists, and a retry "
        "would find the same):\n- The source table bq://p.d.t does not exist. Create it, or fix the project, "
        "dataset or table name in src.\n- The model 'gemini-2.5-flsh' does not exist on vertex. Fix the "
        "model name (e.g. 'gemini-2.5-flash'); the models list of the service shows which exist."
    )


@pytest.mark.parametrize(
    ("models", "logged"),
    [
        ({}, []),
        ({"gemini-2.5-flash": "unknown"}, [("info", "Model %r not checked: the models endpoint gave no usable answer", "gemini-2.5-flash")]),
        ({"gemini-2.5-flash": "not_found", "gemini-2.0-flash-001": "found"}, []),
    ],
)  # fmt: skip
def test_an_unchecked_model_is_logged_through_check(models, logged):
    log = Log()
    try:
        check(
            plan("bq://p.d.t"),
            None,
            FakeReads(models=models),
            project="p",
            allow_cross_project=False,
            log=log,
        )
    except GeminiBatchPreflightError:
        pass
    assert log.calls == logged


@pytest.mark.parametrize(
    ("error", "logged"),
    [
        (api_error(404), []),
        (api_error(503), [("warning", "Could not look model %r up (%s): not checked", "m", 503)]),
    ],
)
def test_a_failed_models_lookup_is_logged_unless_not_found(error, logged):
    log = Log()
    cloud(Genai({"m": error}, {}), log=log).model("m")
    assert log.calls == logged


def test_a_models_lookup_error_without_status_is_logged_itself():
    log = Log()
    boom = RuntimeError("boom")
    cloud(Genai({"m": boom}, {}), log=log).model("m")
    assert log.calls == [("warning", "Could not look model %r up (%s): not checked", "m", boom)]


class BucketStorage(Storage):
    """A storage fake that also records which bucket each read names."""

    def __init__(self, names: list[str]):
        super().__init__(names)
        self.buckets: list[str] = []

    def bucket(self, bucket: str) -> Any:
        self.buckets.append(bucket)
        return super().bucket(bucket)

    def list_blobs(self, bucket: str, prefix: str) -> list[Any]:
        self.buckets.append(bucket)
        return super().list_blobs(bucket, prefix)


def test_gcs_reads_name_the_bucket_and_the_first_literal_prefix():
    storage = BucketStorage(["in/a1b2.jsonl"])
    reads = cloud(storage_client=lambda: storage)
    assert reads.gcs_matches("gs://bkt/in/a1b2.jsonl")
    assert reads.gcs_matches("gs://bkt/in/a*b*.jsonl")
    assert storage.buckets == ["bkt", "bkt"]
    assert storage.prefixes == ["in/a"]


def test_a_missing_file_problem_is_one_whole_sentence():
    reads = cloud(Genai({}, {"files/gone": api_error(404), "files/plain": SimpleNamespace()}))
    assert reads.file_problem("files/gone") == (
        "The Gemini API file files/gone does not exist or belongs to another API key (files expire 48 hours "
        "after upload). Upload the JSONL again with client.files.upload(...) with this connection's key and "
        "pass its new name as src."
    )
    assert reads.file_problem("files/plain") is None
