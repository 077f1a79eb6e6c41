"""States, job views, faults and list filters of the emulator, without the network."""

from __future__ import annotations

import pytest

from local_stack.emulator import states
from local_stack.emulator.faults import ApiErrorInjector, FaultError, Faults, JobFaults
from local_stack.emulator.filters import FilterError, parse_filter
from local_stack.emulator.jobs import Job, parse_rfc3339, rfc3339


def make_job(**overrides: object) -> Job:
    values: dict = {
        "id": "1234567890",
        "backend": "vertex",
        "name": "projects/p/locations/l/batchPredictionJobs/1234567890",
        "model": "publishers/google/models/gemini-2.5-flash",
        "model_id": "gemini-2.5-flash",
        "display_name": "nightly-run-abc",
        "create_time": 1_700_000_000.0,
        "faults": JobFaults(),
        "source": {"kind": "gcs", "uris": ["gs://b/in.jsonl"]},
        "destination": {"kind": "gcs", "prefix": "gs://b/out"},
        "input_config": {"instancesFormat": "jsonl", "gcsSource": {"uris": ["gs://b/in.jsonl"]}},
        "output_config": {"predictionsFormat": "jsonl", "gcsDestination": {"outputUriPrefix": "gs://b/out"}},
        "labels": {"airflow-work-id": "abc123", "team": "ml"},
        "project": "p",
        "location": "l",
    }
    values.update(overrides)
    return Job(**values)


# --- states ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ([states.RUNNING, states.SUCCEEDED], True),
        ([states.RUNNING, states.PAUSED, states.RUNNING, states.PARTIALLY_SUCCEEDED], True),
        ([states.CANCELLING, states.CANCELLED], True),
        ([states.RUNNING, states.CANCELLING, states.CANCELLED], True),
        ([states.EXPIRED], True),
        ([states.SUCCEEDED], False),
        ([states.RUNNING, states.SUCCEEDED, states.RUNNING], False),
        ([states.CANCELLING, states.SUCCEEDED], False),
    ],
)
def test_the_state_machine_allows_only_documented_moves(path: list[str], allowed: bool) -> None:
    job = make_job()
    if allowed:
        for state in path:
            job.move_to(state)
        assert [entry[0] for entry in job.history] == [states.PENDING, *path]
    else:
        with pytest.raises(states.IllegalTransition):
            for state in path:
                job.move_to(state)


def test_moves_stamp_start_and_end_times_and_bump_the_version() -> None:
    job = make_job()
    version = job.version
    job.move_to(states.RUNNING, now=1_700_000_010.0)
    job.move_to(states.SUCCEEDED, now=1_700_000_020.0)
    assert job.start_time == 1_700_000_010.0
    assert job.end_time == 1_700_000_020.0
    assert job.version == version + 2
    assert job.terminal


@pytest.mark.parametrize(
    ("state", "gemini"),
    [
        (states.PENDING, "BATCH_STATE_PENDING"),
        (states.PAUSED, "BATCH_STATE_RUNNING"),
        (states.CANCELLING, "BATCH_STATE_RUNNING"),
        (states.PARTIALLY_SUCCEEDED, "BATCH_STATE_SUCCEEDED"),
        (states.EXPIRED, "BATCH_STATE_EXPIRED"),
    ],
)
def test_gemini_api_states_are_derived_from_the_vertex_vocabulary(state: str, gemini: str) -> None:
    assert states.gemini_state(state) == gemini


# --- views -----------------------------------------------------------------------------------


def test_the_vertex_view_uses_camel_case_and_string_counts() -> None:
    job = make_job(total=10, succeeded=6, failed=1)
    view = job.vertex_view()
    assert view["state"] == "JOB_STATE_PENDING"
    assert view["completionStats"] == {"successfulCount": "6", "failedCount": "1", "incompleteCount": "3"}
    assert view["labels"] == {"airflow-work-id": "abc123", "team": "ml"}
    assert view["createTime"] == "2023-11-14T22:13:20.000000Z"
    assert "outputInfo" not in view


def test_the_vertex_view_parses_into_the_sdk_batch_job() -> None:
    from google.genai import batches, types

    job = make_job(total=4, succeeded=4)
    job.move_to(states.RUNNING)
    job.move_to(states.SUCCEEDED)
    job.output_info = {"gcsOutputDirectory": "gs://b/out/prediction-model-x"}

    parsed = types.BatchJob._from_response(
        response=batches._BatchJob_from_vertex(job.vertex_view()), kwargs={}
    )

    assert parsed.state == types.JobState.JOB_STATE_SUCCEEDED
    assert parsed.done
    assert parsed.completion_stats.successful_count == 4
    assert parsed.output_info.gcs_output_directory == "gs://b/out/prediction-model-x"
    assert parsed.dest.gcs_uri == "gs://b/out"
    assert parsed.src.gcs_uri == ["gs://b/in.jsonl"]


def test_the_gemini_view_is_an_operation_with_the_batch_in_metadata() -> None:
    from google.genai import batches, types

    job = make_job(
        id="b123",
        backend="gemini_api",
        name="batches/b123",
        model="models/gemini-2.5-flash",
        source={"kind": "inline", "count": 1},
        destination={"kind": "inline"},
        labels={},
    )
    job.move_to(states.RUNNING)
    job.move_to(states.CANCELLING)
    assert job.gemini_view()["metadata"]["state"] == "BATCH_STATE_RUNNING"
    job.move_to(states.CANCELLED)
    inline = [
        {"response": {"candidates": [{"content": {"parts": [{"text": "hi"}]}}]}, "metadata": {"key": "1"}}
    ]

    view = job.gemini_view(inline)
    parsed = types.BatchJob._from_response(response=batches._BatchJob_from_mldev(view), kwargs={})

    assert view["done"] is True
    assert parsed.state == types.JobState.JOB_STATE_CANCELLED
    assert parsed.dest.inlined_responses[0].response.text == "hi"
    assert parsed.dest.inlined_responses[0].metadata == {"key": "1"}


def test_a_job_record_round_trips() -> None:
    job = make_job(total=3, succeeded=2, failed=1, faults=JobFaults(row_failure_ratio=0.5))
    job.move_to(states.RUNNING)
    copy = Job.from_record(job.to_record())
    assert copy.to_record() == job.to_record()
    assert copy.faults == job.faults


def test_rfc3339_round_trips() -> None:
    assert parse_rfc3339(rfc3339(1_700_000_000.25)) == 1_700_000_000.25
    assert parse_rfc3339("2023-11-14T22:13:20+00:00") == 1_700_000_000.0


# --- faults ----------------------------------------------------------------------------------


def test_fault_updates_are_partial_and_validated() -> None:
    faults = Faults().updated({"row_failure_ratio": 0.25, "api_error_codes": [500]})
    assert faults.row_failure_ratio == 0.25
    assert faults.api_error_codes == (500,)
    assert faults.queue_delay_s == 0.0
    for bad in ({"row_failure_ratio": 2}, {"nope": 1}, {"api_error_codes": [418]}, {"queue_delay_s": -1}):
        with pytest.raises(FaultError):
            faults.updated(bad)


def test_jobs_snapshot_only_the_job_level_faults() -> None:
    snapshot = Faults(api_error_ratio=0.5, queue_delay_s=2.0, job_failure="boom").for_job()
    assert snapshot == JobFaults(queue_delay_s=2.0, job_failure="boom")


@pytest.mark.parametrize(("ratio", "failures"), [(0.0, 0), (0.25, 25), (0.5, 50), (1.0, 100)])
def test_api_errors_are_injected_for_exactly_the_ratio_of_calls(ratio: float, failures: int) -> None:
    injector = ApiErrorInjector()
    faults = Faults(api_error_ratio=ratio, api_error_codes=(429, 503))
    codes = [injector.next_error(faults) for _ in range(100)]
    assert sum(code is not None for code in codes) == failures
    assert {c for c in codes if c is not None} <= {429, 503}


def test_row_failures_are_deterministic_by_content_and_close_to_the_ratio() -> None:
    faults = JobFaults(row_failure_ratio=0.3)
    rows = [f'{{"request": {i}}}'.encode() for i in range(2000)]
    chosen = [faults.row_fails(row) for row in rows]
    assert chosen == [faults.row_fails(row) for row in rows]
    assert 0.25 < sum(chosen) / len(rows) < 0.35


# --- filters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "matches"),
    [
        ("", True),
        ('display_name="nightly-run-abc"', True),
        ("displayName=nightly-run-abc", True),
        ('display_name="other"', False),
        ('display_name:"nightly*"', True),
        ('labels.airflow-work-id="abc123"', True),
        ('labels.airflow-work-id="zzz"', False),
        ("labels.team:*", True),
        ("labels.missing:*", False),
        ("state=JOB_STATE_PENDING", True),
        ('state="JOB_STATE_RUNNING"', False),
        ('labels.team="ml" AND state=JOB_STATE_PENDING', True),
        ('labels.team="ml" AND state=JOB_STATE_RUNNING', False),
        ('labels.team="ml" state=JOB_STATE_PENDING', True),
        ('labels.team="x" OR display_name="nightly-run-abc"', True),
        ('NOT labels.team="ml"', False),
        ('-labels.team="x"', True),
        ('(labels.team="x" OR labels.team="ml") AND state!=JOB_STATE_FAILED', True),
        ('create_time>"2023-11-14T00:00:00Z"', True),
        ('create_time<"2023-11-14T00:00:00Z"', False),
        ('model="gemini-2.5-flash"', True),
    ],
)
def test_list_filters_match_as_vertex_documents_them(text: str, matches: bool) -> None:
    assert parse_filter(text)(make_job()) is matches


@pytest.mark.parametrize(
    "text", ['bogus="x"', 'display_name="x" AND', "(state=JOB_STATE_FAILED", "state>x", "="]
)
def test_bad_filters_are_rejected(text: str) -> None:
    with pytest.raises(FilterError):
        parse_filter(text)(make_job())


# --- strictness: stats, canonical statuses, delete metadata ------------------------------


@pytest.mark.parametrize(
    ("source", "total", "done", "stats"),
    [
        ({"kind": "inline", "count": 3}, None, (0, 0), {"requestCount": "3", "pendingRequestCount": "3"}),
        ({"kind": "file", "name": "files/x"}, None, (0, 0), {}),
        (
            {"kind": "inline", "count": 3},
            3,
            (1, 1),
            {
                "requestCount": "3",
                "successfulRequestCount": "1",
                "failedRequestCount": "1",
                "pendingRequestCount": "1",
            },
        ),
    ],
)
def test_batch_stats_are_present_from_creation(
    source: dict, total: int | None, done: tuple[int, int], stats: dict
) -> None:
    job = make_job(
        id="b1", backend="gemini_api", name="batches/b1", source=source, destination={"kind": "inline"}
    )
    job.total = total
    job.succeeded, job.failed = done
    assert job.gemini_view()["metadata"]["batchStats"] == stats


# google/rpc/code.proto's "HTTP Mapping" lines: HTTP code -> every status name mapped to it.
CODE_PROTO_HTTP_MAPPING = {
    400: {"INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE"},
    401: {"UNAUTHENTICATED"},
    403: {"PERMISSION_DENIED"},
    404: {"NOT_FOUND"},
    409: {"ALREADY_EXISTS", "ABORTED"},
    429: {"RESOURCE_EXHAUSTED"},
    499: {"CANCELLED"},
    500: {"INTERNAL", "UNKNOWN", "DATA_LOSS"},
    501: {"UNIMPLEMENTED"},
    503: {"UNAVAILABLE"},
    504: {"DEADLINE_EXCEEDED"},
}


@pytest.mark.parametrize("code", sorted(set(CODE_PROTO_HTTP_MAPPING) | {408, 502}))
def test_each_http_code_has_one_canonical_status_that_code_proto_maps_to_it(code: int) -> None:
    from local_stack.emulator.errors import GRPC_CODES, STATUS_BY_CODE, ApiError

    status = STATUS_BY_CODE[code]
    assert status in GRPC_CODES
    assert status in CODE_PROTO_HTTP_MAPPING.get(code, {"DEADLINE_EXCEEDED", "UNAVAILABLE"})
    assert ApiError(code, "m").status == status


@pytest.mark.parametrize("code", [400, 403, 404, 408, 409, 429, 500, 502, 503, 504])
def test_injected_faults_use_the_canonical_status_of_their_code(code: int) -> None:
    from local_stack.emulator.errors import STATUS_BY_CODE
    from local_stack.emulator.faults import API_ERRORS

    assert API_ERRORS[code][0] == STATUS_BY_CODE[code]


@pytest.mark.parametrize("version", ["v1", "v1beta1"])
def test_delete_metadata_names_the_api_version_called(version: str) -> None:
    from local_stack.emulator.api_vertex import delete_metadata_type

    assert delete_metadata_type(version) == (
        f"type.googleapis.com/google.cloud.aiplatform.{version}.DeleteOperationMetadata"
    )


def test_row_errors_are_google_rpc_status_and_vertex_lines_carry_the_http_shape() -> None:
    from local_stack.emulator.errors import row_error
    from local_stack.emulator.faults import ROW_FAILURE_ERROR
    from local_stack.emulator.runner import vertex_status

    assert set(ROW_FAILURE_ERROR) == {"code", "message"}
    assert row_error(400, "m") == {"code": 400, "message": "m"}
    assert row_error(400, "m", [{"@type": "t"}]) == {"code": 400, "message": "m", "details": [{"@type": "t"}]}
    assert vertex_status(row_error(400, "bad")) == (
        'Bad Request: {"error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT"}}'
    )
    assert vertex_status(ROW_FAILURE_ERROR).startswith('Too Many Requests: {"error":{"code":429,')
    assert '"status":"RESOURCE_EXHAUSTED"' in vertex_status(ROW_FAILURE_ERROR)


# --- the API key and private files --------------------------------------------------------


@pytest.mark.parametrize(
    ("file_text", "environ", "key"),
    [
        (None, {}, "local-gemini-api-key"),
        (None, {"GEMINI_EMULATOR_API_KEY": "from-env"}, "from-env"),
        (None, {"GEMINI_EMULATOR_API_KEY": ""}, "local-gemini-api-key"),
        ("from-file\n", {"GEMINI_EMULATOR_API_KEY": "from-env"}, "from-file"),
    ],
)
def test_the_api_key_comes_from_a_file_or_the_environment(tmp_path, file_text, environ, key) -> None:
    from local_stack.emulator.__main__ import api_key_from

    key_file = None
    if file_text is not None:
        key_file = tmp_path / "key"
        key_file.write_text(file_text)
    assert api_key_from(key_file, environ) == key


@pytest.mark.parametrize("file_text", [None, " \n"])
def test_a_missing_or_empty_key_file_stops_the_emulator(tmp_path, file_text) -> None:
    from local_stack.emulator.__main__ import api_key_from, parse_args

    key_file = tmp_path / "key"
    if file_text is not None:
        key_file.write_text(file_text)
    with pytest.raises(SystemExit, match=str(key_file)):
        api_key_from(key_file, {"GEMINI_EMULATOR_API_KEY": "x"})
    with pytest.raises(SystemExit):
        parse_args(["--state-dir", str(tmp_path), "--api-key", "secret"])  # no such option


def test_private_files_and_dirs_are_owner_only_even_if_they_existed_open(tmp_path) -> None:
    import os
    import stat

    from local_stack.envfile import write_env_file
    from local_stack.private_files import open_private_append, private_dir, write_private_text

    def mode(path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    old = os.umask(0)
    try:
        opened = tmp_path / "d"
        opened.mkdir(mode=0o777)
        for name in ("env", "state", "log"):
            (opened / name).write_text("x")
            (opened / name).chmod(0o666)
        assert mode(private_dir(opened)) == 0o700
        assert mode(private_dir(tmp_path / "new" / "deeper")) == 0o700
        write_env_file(opened / "env", {"GEMINI_API_KEY": "k"})
        write_private_text(opened / "state", "{}")
        with open_private_append(opened / "log") as handle:
            handle.write(b"more")
    finally:
        os.umask(old)
    assert {name: mode(opened / name) for name in ("env", "state", "log")} == {
        "env": 0o600,
        "state": 0o600,
        "log": 0o600,
    }
    assert (opened / "log").read_bytes() == b"xmore" and (opened / "state").read_text() == "{}"
