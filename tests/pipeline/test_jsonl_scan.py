"""Streaming JSONL scan and shard plan: a table of bad inputs, each rejected with its file and line."""

from __future__ import annotations

import io
import json
import tracemalloc
from typing import Any

import pytest

from gemini_batch.pipeline import jsonl_scan
from gemini_batch.pipeline.findings import InputScan, InputValidationError
from gemini_batch.pipeline.jsonl_scan import scan_jsonl
from gemini_batch.pipeline.limits import VERTEX_LIMITS, JobLimits

SOURCE = "gs://bucket/in/requests.jsonl"


def vertex_line(key: str = "k1", text: str = "Hello", **request: object) -> str:
    body = {"contents": [{"role": "user", "parts": [{"text": text}]}], "labels": {"gemini_batch_key": key}}
    body.update(request)
    return json.dumps({"request": body})


def gemini_line(key: object = "k1", text: str = "Hello") -> str:
    return json.dumps({"key": key, "request": {"contents": [{"parts": [{"text": text}]}]}})


def with_contents(contents: object, key: str = "k1") -> str:
    return json.dumps({"request": {"contents": contents, "labels": {"gemini_batch_key": key}}})


def scan(data: str | bytes, **kwargs: object) -> InputScan:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return scan_jsonl(io.BytesIO(raw), source=SOURCE, **kwargs)  # type: ignore[arg-type]


GOOD = vertex_line("k0") + "\n"

# (id, file content, scan kwargs, expected location suffix, expected message fragment)
BAD_INPUTS = [
    ("invalid-json", GOOD + '{"request": {"contents": [\n', {}, ":2", "invalid JSON at column"),
    ("truncated-json", '{"request": {"contents": [{"parts": [{"text": "x"}]}]}', {}, ":1", "invalid JSON"),
    ("line-not-object", GOOD + "[1, 2]\n", {}, ":2", "must be a JSON object"),
    ("request-missing", '{"req": {"contents": []}}\n', {}, ":1", "'request' is missing (found req)"),
    ("request-not-object", '{"request": "Hello"}\n', {}, ":1", "request must be a JSON object"),
    (
        "contents-missing",
        json.dumps({"request": {"labels": {"gemini_batch_key": "a"}}}) + "\n",
        {},
        ":1",
        "request.contents is missing",
    ),
    ("contents-empty", with_contents([]) + "\n", {}, ":1", "request.contents must be a non-empty list"),
    (
        "contents-not-list",
        with_contents({"parts": [{"text": "x"}]}) + "\n",
        {},
        ":1",
        "request.contents must be a non-empty list of Content objects, got an object",
    ),
    (
        "content-without-parts",
        with_contents([{"role": "user"}]) + "\n",
        {},
        ":1",
        "request.contents[0].parts must be a non-empty list",
    ),
    ("parts-empty", with_contents([{"parts": []}]) + "\n", {}, ":1", "request.contents[0].parts must be"),
    (
        "part-not-object",
        with_contents([{"parts": ["Hello"]}]) + "\n",
        {},
        ":1",
        "request.contents[0].parts[0] must be a JSON object (Part)",
    ),
    ("part-without-data", with_contents([{"parts": [{}]}]) + "\n", {}, ":1", "parts[0] has no data"),
    (
        "part-unknown-field",
        with_contents([{"parts": [{"txt": "x"}]}]) + "\n",
        {},
        ":1",
        "parts[0].txt is not a field of Part (did you mean 'text'?)",
    ),
    (
        "part-two-data-fields",
        with_contents([{"parts": [{"text": "x", "fileData": {}}]}]) + "\n",
        {},
        ":1",
        "has several data fields",
    ),
    (
        "text-not-string",
        with_contents([{"parts": [{"text": 5}]}]) + "\n",
        {},
        ":1",
        "parts[0].text must be a string, got a number",
    ),
    (
        "bad-role",
        with_contents([{"role": "assistant", "parts": [{"text": "x"}]}]) + "\n",
        {},
        ":1",
        "role is 'assistant': role must be 'user' or 'model'",
    ),
    (
        "unknown-request-field",
        vertex_line(generation_configs={}) + "\n",
        {},
        ":1",
        "request.generation_configs is not a field of GenerateContentRequest (did you mean 'generationConfig'?)",
    ),
    (
        "system-instruction-without-parts",
        vertex_line(systemInstruction={"text": "Be brief"}) + "\n",
        {},
        ":1",
        "request.systemInstruction.parts must be a non-empty list",
    ),
    (
        "temperature-out-of-range",
        vertex_line(generationConfig={"temperature": 3}) + "\n",
        {},
        ":1",
        "generationConfig.temperature must be a number from 0 to 2, got 3",
    ),
    (
        "max-output-tokens-zero",
        vertex_line(generationConfig={"maxOutputTokens": 0}) + "\n",
        {},
        ":1",
        "maxOutputTokens must be a positive integer",
    ),
    (
        "schema-without-json-mime",
        vertex_line(generationConfig={"responseSchema": {"type": "OBJECT"}}) + "\n",
        {},
        ":1",
        "responseSchema needs responseMimeType 'application/json'",
    ),
    (
        "labels-not-object",
        json.dumps({"request": {"contents": [{"parts": [{"text": "x"}]}], "labels": ["a"]}}) + "\n",
        {},
        ":1",
        "request.labels must be an object",
    ),
    (
        "key-label-missing",
        json.dumps({"request": {"contents": [{"parts": [{"text": "x"}]}]}}) + "\n",
        {},
        ":1",
        "request.labels.gemini_batch_key is missing",
    ),
    (
        "key-label-uppercase",
        vertex_line("Order-42") + "\n",
        {},
        ":1",
        "hold at most 63 lowercase letters, digits",
    ),
    (
        "key-label-too-long",
        vertex_line("k" * 64) + "\n",
        {},
        ":1",
        "is 64 characters long; at most 63 are allowed",
    ),
    (
        "key-label-not-string",
        json.dumps({"request": {"contents": [{"parts": [{"text": "x"}]}], "labels": {"gemini_batch_key": 5}}})
        + "\n",
        {},
        ":1",
        "label gemini_batch_key=5 is invalid: it must be a string, got int",
    ),
    (
        "duplicate-key",
        GOOD + vertex_line("k1") + "\n" + vertex_line("k0") + "\n",
        {},
        ":3",
        "duplicate key: the same key is on line 1",
    ),
    ("blank-line-inside", GOOD + "\n" + vertex_line("k1") + "\n", {}, ":2", "blank line inside the file"),
    ("byte-order-mark", "\ufeff" + GOOD, {}, ":1", "byte order mark"),
    ("invalid-utf8", GOOD.encode() + b'{"request": "\xff\xfe"}\n', {}, ":2", "not valid UTF-8 at column 14"),
    (
        "raw-surrogate-bytes",
        GOOD.encode() + b'{"request": "\xed\xa0\x80"}\n',
        {},
        ":2",
        "not valid UTF-8 at column 14",
    ),
    (
        "line-too-long",
        GOOD + vertex_line("k1", text="x" * 500) + "\n",
        {"limits": JobLimits(max_requests=10, max_bytes=10_000, max_line_bytes=300)},
        ":2",
        "(limit: 300 bytes per line)",
    ),
    (
        "too-many-requests",
        GOOD + vertex_line("k1") + "\n" + vertex_line("k2") + "\n",
        {"limits": JobLimits(max_requests=2, max_bytes=10_000)},
        "requests.jsonl",
        "3 requests exceed the Vertex AI batch limit of 2 requests per job; split the input into 2 shards",
    ),
    (
        "too-many-bytes",
        GOOD * 1 + vertex_line("k1") + "\n",
        {"limits": JobLimits(max_requests=10, max_bytes=150)},
        "requests.jsonl",
        "bytes exceed the Vertex AI batch limit of 150 bytes per job",
    ),
    ("empty-file", "", {}, "requests.jsonl", "the file holds no requests"),
    (
        "gemini-key-missing",
        json.dumps({"request": {"contents": [{"parts": [{"text": "x"}]}]}}) + "\n",
        {"input_format": "gemini_jsonl"},
        ":1",
        "'key' is missing",
    ),
    (
        "gemini-key-not-string",
        gemini_line(key=7) + "\n",
        {"input_format": "gemini_jsonl"},
        ":1",
        "'key' must be a non-empty string, got 7",
    ),
    (
        "gemini-duplicate-key",
        gemini_line("a") + "\n" + gemini_line("a") + "\n",
        {"input_format": "gemini_jsonl"},
        ":2",
        "duplicate key: the same key is on line 1",
    ),
]


@pytest.mark.parametrize(
    ("content", "kwargs", "where", "fragment"),
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
def test_bad_input_is_rejected_naming_file_and_line(
    content: str | bytes, kwargs: dict, where: str, fragment: str
) -> None:
    with pytest.raises(InputValidationError) as caught:
        scan(content, **kwargs)
    error = caught.value
    assert error.source == SOURCE
    matching = [issue for issue in error.issues if fragment in issue.message]
    assert matching, f"no issue contains {fragment!r}: {error}"
    assert matching[0].location.endswith(where)
    assert matching[0].location.startswith(SOURCE)
    assert "nothing was submitted" in str(error)


def test_bad_input_table_has_at_least_twenty_cases() -> None:
    assert len(BAD_INPUTS) >= 20


def test_good_vertex_file_passes_with_one_shard() -> None:
    data = "".join(vertex_line(f"k{i}") + "\n" for i in range(5))
    result = scan(data)
    assert (result.requests, result.bytes) == (5, len(data))
    assert [(s.start, s.end, s.requests, s.first_line) for s in result.shards] == [(0, len(data), 5, 1)]


def test_good_gemini_file_passes_and_crlf_and_missing_final_newline_are_fine() -> None:
    data = gemini_line("a") + "\r\n" + gemini_line("b")
    result = scan(data, input_format="gemini_jsonl")
    assert result.requests == 2
    assert result.bytes == len(data)


def test_every_problem_is_reported_at_once_up_to_the_cap() -> None:
    data = "".join("{bad\n" for _ in range(30))
    with pytest.raises(InputValidationError) as caught:
        scan(data, max_issues=10)
    assert len(caught.value.issues) == 10
    assert caught.value.more == 20
    assert [issue.location for issue in caught.value.issues[:2]] == [f"{SOURCE}:1", f"{SOURCE}:2"]
    assert "and 20 more" in str(caught.value)


def test_shard_plan_respects_request_and_byte_limits_without_enforcing_them() -> None:
    lines = [vertex_line(f"k{i}") + "\n" for i in range(10)]
    data = "".join(lines)
    result = scan(data, limits=JobLimits(max_requests=4, max_bytes=10_000), enforce_limits=False)
    assert [s.requests for s in result.shards] == [4, 4, 2]
    assert [s.first_line for s in result.shards] == [1, 5, 9]
    raw = data.encode()
    assert b"".join(raw[s.start : s.end] for s in result.shards) == raw
    size = len(lines[0]) * 3  # every line has the same length
    by_bytes = scan(data, limits=JobLimits(max_requests=100, max_bytes=size), enforce_limits=False)
    assert [s.bytes for s in by_bytes.shards] == [size, size, size, len(lines[0])]


@pytest.mark.parametrize(("lines", "shards"), [(6, [6]), (7, [6, 1])], ids=["at-the-limit", "one-over"])
def test_a_file_of_exactly_the_request_limit_is_one_shard_and_one_more_line_is_two(
    lines: int, shards: list
) -> None:
    data = "".join(vertex_line(f"k{i}") + "\n" for i in range(lines))
    limits = JobLimits(max_requests=6, max_bytes=10**6)
    planned = scan(data, limits=limits, enforce_limits=False)
    assert [s.requests for s in planned.shards] == shards
    if len(shards) == 1:
        assert scan(data, limits=limits).requests == 6  # enforced: accepted as one job
    else:
        with pytest.raises(
            InputValidationError, match="7 requests exceed the Vertex AI batch limit of 6 requests"
        ):
            scan(data, limits=limits)


@pytest.mark.parametrize(("spare", "shards"), [(0, 1), (-1, 2)], ids=["at-the-limit", "one-byte-over"])
def test_a_file_of_exactly_the_byte_limit_is_one_shard_and_one_byte_more_is_two(
    spare: int, shards: int
) -> None:
    data = "".join(vertex_line(f"k{i}") + "\n" for i in range(4))
    limits = JobLimits(max_requests=100, max_bytes=len(data.encode()) + spare)
    assert len(scan(data, limits=limits, enforce_limits=False).shards) == shards
    if shards == 1:
        assert scan(data, limits=limits).bytes == len(data.encode())
    else:
        with pytest.raises(InputValidationError, match="bytes exceed the Vertex AI batch limit"):
            scan(data, limits=limits)


def test_a_single_request_over_the_byte_limit_cannot_be_sharded() -> None:
    with pytest.raises(InputValidationError, match="cannot be sharded"):
        scan(vertex_line("k0", text="x" * 400) + "\n", limits=JobLimits(10, 200), enforce_limits=False)


def test_scan_round_trips_through_xcom_form() -> None:
    result = scan(GOOD)
    assert InputScan.from_dict(json.loads(json.dumps(result.to_dict()))) == result


@pytest.mark.parametrize("chunk", [1, 7, 64, 4096])
def test_lines_split_across_chunks_are_read_whole(monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    monkeypatch.setattr(jsonl_scan, "_CHUNK_BYTES", chunk)
    data = "".join(vertex_line(f"k{i}", text="é" * (i + 1)) + "\n" for i in range(20))
    result = scan(data, limits=JobLimits(max_requests=7, max_bytes=10**6), enforce_limits=False)
    assert result.requests == 20
    raw = data.encode()
    assert sum(s.bytes for s in result.shards) == len(raw)
    assert all(raw[s.start : s.end].endswith(b"\n") for s in result.shards)


@pytest.mark.parametrize("chunk", [5, 64, 4096])
def test_overlong_line_is_skipped_without_being_held(monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    monkeypatch.setattr(jsonl_scan, "_CHUNK_BYTES", chunk)
    data = GOOD + vertex_line("k1", text="x" * 1000) + "\n" + vertex_line("k2") + "\n"
    with pytest.raises(InputValidationError) as caught:
        scan(data, limits=JobLimits(max_requests=10, max_bytes=10**6, max_line_bytes=200))
    assert [issue.location for issue in caught.value.issues] == [f"{SOURCE}:2"]


def test_duplicates_are_found_among_many_keys_in_line_order() -> None:
    keys = [f"k{i}" for i in range(5000)] + ["k17", "k4999", "k17"]
    data = "".join(vertex_line(key) + "\n" for key in keys)
    with pytest.raises(InputValidationError) as caught:
        scan(data)
    assert [str(issue).split(": ", 1)[0] for issue in caught.value.issues] == [
        f"{SOURCE}:5001",
        f"{SOURCE}:5002",
        f"{SOURCE}:5003",
    ]
    assert [issue.message.split("line ")[1].split(";")[0] for issue in caught.value.issues] == [
        "18",
        "5000",
        "18",
    ]


class _GeneratedStream(io.RawIOBase):
    """A large JSONL file produced a line per read, so the test itself holds none of it."""

    def __init__(self, lines: int) -> None:
        self._lines = iter(range(lines))
        self._pending = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if not self._pending:
            index = next(self._lines, None)
            if index is None:
                return b""
            self._pending = (vertex_line(f"k{index}", text="lorem ipsum " * 280) + "\n").encode()
        chunk, self._pending = self._pending[:size], self._pending[size:]
        return chunk


def test_memory_is_bounded_by_chunk_and_keys_not_by_file_size() -> None:
    import numpy  # noqa: F401  (imported before tracing: the import is not the scan's memory)

    lines = 3_000  # about 10 MB (few long lines: under mutmut's trampolines, 30,000 took over 20 s)
    tracemalloc.start()
    try:
        result = scan_jsonl(_GeneratedStream(lines), source=SOURCE)  # type: ignore[arg-type]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.requests == lines
    assert result.bytes > 10_000_000
    # A line in flight plus 12 bytes per key (and numpy's sort), far below the file size.
    assert peak < 2_000_000 + 40 * lines


def test_default_limits_are_the_documented_ones() -> None:
    assert (VERTEX_LIMITS.max_requests, VERTEX_LIMITS.max_bytes) == (200_000, 1_000_000_000)


def _with_text(raw_text: str, key: str = "k1") -> str:
    """A Vertex line whose text is the raw JSON ``raw_text`` (not re-escaped)."""
    return vertex_line(key, text="@@").replace('"@@"', raw_text)


# (id, line, expected message fragment): strict JSON, each reported with line 2 AND a column.
STRICT_JSON_CASES = [
    ("nan", _with_text("NaN"), "NaN is not JSON"),
    ("infinity", _with_text("Infinity"), "Infinity is not JSON"),
    ("minus-infinity", _with_text("-Infinity"), "-Infinity is not JSON"),
    ("nan-in-config", vertex_line("k1", generationConfig={"temperature": float("nan")}), "NaN is not JSON"),
    ("duplicate-top-member", vertex_line("k1")[:-1] + ', "request": {}}', "duplicate member 'request'"),
    ("duplicate-nested-member", _with_text('"a", "text": "b"'), "duplicate member 'text'"),
    ("lone-high-surrogate", _with_text('"x\\ud800y"'), "lone UTF-16 surrogate"),
    ("lone-low-surrogate", _with_text('"x\\udc00"'), "lone UTF-16 surrogate"),
    ("reversed-pair", _with_text('"\\ude00\\ud83d"'), "lone UTF-16 surrogate"),
    ("high-at-end", _with_text('"ok\\uD83D"'), "lone UTF-16 surrogate"),
    ("high-then-escaped-backslash", _with_text('"\\ud83d\\\\ude00"'), "lone UTF-16 surrogate"),
]


@pytest.mark.parametrize(
    ("line", "fragment"),
    [case[1:] for case in STRICT_JSON_CASES],
    ids=[case[0] for case in STRICT_JSON_CASES],
)
def test_strict_json_errors_name_the_line_and_column(line: str, fragment: str) -> None:
    with pytest.raises(InputValidationError) as caught:
        scan(GOOD + line + "\n")
    (issue,) = caught.value.issues
    assert issue.location == f"{SOURCE}:2"
    assert fragment in issue.message
    column = int(issue.message.split("at column ", 1)[1].split(":", 1)[0])
    assert 1 < column <= len(line)


@pytest.mark.parametrize(
    ("line", "column"),
    [
        (_with_text('"x\\ud800y"'), len(vertex_line("k1", text="@@").split('"@@"')[0]) + 3),
        ('{"request": NaN}', 13),
        ('{"a": 1, "a": 2}', 10),
    ],
    ids=["surrogate", "nan", "duplicate"],
)
def test_the_column_points_at_the_offending_token(line: str, column: int) -> None:
    with pytest.raises(InputValidationError) as caught:
        scan(line + "\n")
    assert f"at column {column}:" in caught.value.issues[0].message


# What the services read that a stricter reader might refuse: accepted (see jsonl_scan._check_line).
ACCEPTED_FILES = [
    ("crlf", GOOD.replace("\n", "\r\n") + vertex_line("k1") + "\r\n", 2),
    ("no-final-newline", GOOD + vertex_line("k1"), 2),
    ("trailing-blank-lines", GOOD + vertex_line("k1") + "\n\n\n", 2),
    ("surrogate-pair-escape", GOOD + _with_text('"\\ud83d\\ude00"') + "\n", 2),
    ("escaped-backslash-u", GOOD + _with_text('"C:\\\\ud800"') + "\n", 2),
    ("nan-inside-a-string", GOOD + vertex_line("k1", text="NaN and Infinity") + "\n", 2),
    ("same-name-in-sibling-objects", GOOD + _with_text('"a"}, {"text": "b"') + "\n", 2),
    ("non-ascii", GOOD + vertex_line("k1", text="héllo ✓ 😀") + "\n", 2),
    ("spaces-around-json", "  " + GOOD.rstrip("\n") + "  \n", 1),
]


@pytest.mark.parametrize(
    ("content", "requests"), [case[1:] for case in ACCEPTED_FILES], ids=[case[0] for case in ACCEPTED_FILES]
)
def test_inputs_the_service_accepts_are_accepted(content: str, requests: int) -> None:
    assert scan(content).requests == requests


class _Blob:
    """The few ``storage.Blob`` calls scan_gcs_jsonl makes: its size and a ranged-read stream."""

    def __init__(self, data: bytes | None, opened: list, size: int | None = None) -> None:
        self.data, self.opened = data, opened
        self.size = size if size is not None else None if data is None else len(data)

    def open(self, mode: str, *, chunk_size: int) -> io.BytesIO:
        from google.api_core.exceptions import NotFound

        self.opened.append((mode, chunk_size))
        if self.data is None:
            raise NotFound("gone")
        return io.BytesIO(self.data)


class _Storage:
    """A ``storage.Client`` over one dict of objects by (bucket, name)."""

    def __init__(self, objects: dict[tuple[str, str], bytes | None], size: int | None = None) -> None:
        self.objects, self.opened, self.size = objects, [], size

    def bucket(self, bucket: str) -> Any:
        storage = self

        class Bucket:
            def get_blob(self, name: str) -> _Blob | None:
                if (bucket, name) not in storage.objects:
                    return None
                return _Blob(storage.objects[bucket, name], storage.opened, storage.size)

        return Bucket()


def test_a_gcs_object_is_scanned_as_a_stream_in_ranged_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real_scan = jsonl_scan.scan_jsonl

    def recording_scan(stream: Any, **kwargs: Any) -> InputScan:
        calls.append(kwargs)
        return real_scan(stream, **kwargs)

    monkeypatch.setattr(jsonl_scan, "scan_jsonl", recording_scan)
    data = (gemini_line("a") + "\n").encode()
    storage = _Storage({("bucket", "in/requests.jsonl"): data})
    limits = JobLimits(max_requests=5, max_bytes=10**6)
    result = jsonl_scan.scan_gcs_jsonl(
        SOURCE,
        storage_client=storage,  # type: ignore[arg-type]
        input_format="gemini_jsonl",
        limits=limits,
        enforce_limits=False,
        key_label="my_key",
        max_issues=3,
        chunk_size=1024,
    )
    assert (result.source, result.requests, result.bytes, result.limits) == (SOURCE, 1, len(data), limits)
    assert storage.opened == [("rb", 1024)]
    assert calls == [
        {
            "source": SOURCE,
            "input_format": "gemini_jsonl",
            "limits": limits,
            "enforce_limits": False,
            "key_label": "my_key",
            "max_issues": 3,
        }
    ]
    jsonl_scan.scan_gcs_jsonl(SOURCE, storage_client=storage, input_format="gemini_jsonl")  # type: ignore[arg-type]
    assert storage.opened[-1] == ("rb", 8 * 1024 * 1024)
    assert calls[-1]["limits"] == VERTEX_LIMITS and calls[-1]["enforce_limits"] is True
    vertex = _Storage({("bucket", "in/requests.jsonl"): GOOD.encode()}, size=10**9)  # as the object says
    jsonl_scan.scan_gcs_jsonl(SOURCE, storage_client=vertex)  # type: ignore[arg-type]
    assert (calls[-1]["input_format"], calls[-1]["max_issues"], calls[-1]["key_label"]) == (
        "vertex_jsonl",
        25,
        "gemini_batch_key",
    )


def test_a_missing_or_vanished_gcs_object_names_its_uri() -> None:
    with pytest.raises(InputValidationError) as caught:
        jsonl_scan.scan_gcs_jsonl("gs://bucket/absent.jsonl", storage_client=_Storage({}))  # type: ignore[arg-type]
    assert caught.value.source == "gs://bucket/absent.jsonl"
    assert [str(issue) for issue in caught.value.issues] == [
        "gs://bucket/absent.jsonl: the object does not exist; check the path and the data interval"
    ]
    storage = _Storage({("bucket", "gone.jsonl"): None})
    with pytest.raises(InputValidationError) as caught:
        jsonl_scan.scan_gcs_jsonl("gs://bucket/gone.jsonl", storage_client=storage)  # type: ignore[arg-type]
    assert caught.value.source == "gs://bucket/gone.jsonl"
    assert [str(issue) for issue in caught.value.issues] == [
        "gs://bucket/gone.jsonl: the object disappeared: 404 gone"
    ]


# The strict reading's columns, on the text as written (a raw string: one backslash is one byte).
@pytest.mark.parametrize(
    ("text", "column"),
    [
        (r'"\ud800"', 2),  # a high half at the end
        (r'"\udc00"', 2),  # a low half alone
        (r'"\ud83d\ude00"', None),  # a pair
        (r'"\uDBFF\uDFFF"', None),  # a pair in upper case
        (r'"\udbff\udfff"', None),
        (r'"\ud83d\ude00\udc00"', 14),  # a pair, then a low half alone
        (r'"\ud83dx\ude00"', 2),  # a high half not followed by its low half
        (r'"\ud83d\ud83d\ude00"', 2),  # two high halves
        (r'"\uDA00"', 2),
        (r'"\\ud800"', None),  # an escaped backslash, then 'ud800'
        (r'"\\ud800 \udc00"', 10),
        (r'"\\\ud800"', 4),  # an escaped backslash, then an escape
        (r'"\\\ud83d\ude00"', None),  # an escaped backslash, then a pair
        (r'"\\\\ud800"', None),  # two escaped backslashes, then 'ud800'
    ],
)
def test_a_lone_surrogate_escape_is_found_at_its_column(text: str, column: int | None) -> None:
    assert jsonl_scan._lone_surrogate_column(text) == column


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": "NaN", "b": NaN}', "invalid JSON at column 19: NaN is not JSON"),
        ('{"a": -Infinity}', "invalid JSON at column 7: -Infinity is not JSON"),
        (
            '{"a": 1, "b": 2, "b": 3}',
            "invalid JSON at column 18: duplicate member 'b' in an object; keep one",
        ),
        ('{"k": "b:", "b" : 2, "b":3}', "invalid JSON at column 22: duplicate member 'b'"),
        ('{"a": 1, "\\u0061": 2}', "invalid JSON at column 1: duplicate member 'a'"),  # written otherwise
        ('{"it\'s": 1, "it\'s": 2}', 'invalid JSON at column 13: duplicate member "it\'s"'),
    ],
)
def test_a_strict_json_error_names_its_column(text: str, message: str) -> None:
    (problem,), key = jsonl_scan._examine_line(text.encode(), "vertex_jsonl", "k", False)
    assert problem.startswith(message) and key is None


def test_a_gemini_line_without_a_key_is_told_its_form() -> None:
    line = json.dumps({"request": {"contents": [{"parts": [{"text": "x"}]}]}}).encode()
    assert jsonl_scan._examine_line(line, "gemini_jsonl", "k", False) == (
        ['\'key\' is missing; Gemini API file lines are {"key": "...", "request": {...}}'],
        None,
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b'\xef\xbb\xbf{"request": {}}',
            "the file starts with a UTF-8 byte order mark (column 1); save it as UTF-8 without a BOM",
        ),
        (
            '{"é": "'.encode() + b'\xff"}',
            "not valid UTF-8 at column 8 (byte 9 of the line): invalid start byte; save the file as UTF-8",
        ),
        (b"[1]", 'a line must be a JSON object like {"request": {...}}, got a list'),
        (
            b'{"f": 1, "e": 1, "d": 1, "c": 1, "b": 1, "a": 1}',
            "'request' is missing (found a, b, c, d, e); each line is {\"request\": {...}}",
        ),
        (b"{}", "'request' is missing (found nothing); each line is {\"request\": {...}}"),
    ],
)
def test_a_broken_line_is_told_what_is_wrong_and_what_to_do(content: bytes, message: str) -> None:
    assert jsonl_scan._examine_line(content, "vertex_jsonl", "k", True) == ([message], None)


def test_an_unknown_input_format_names_the_known_ones() -> None:
    with pytest.raises(ValueError) as caught:
        scan(GOOD, input_format="openai_jsonl")
    assert str(caught.value) == "unknown input format 'openai_jsonl'; use 'vertex_jsonl' or 'gemini_jsonl'"


def test_an_empty_file_is_refused_with_why() -> None:
    with pytest.raises(InputValidationError) as caught:
        scan("")
    assert [str(issue) for issue in caught.value.issues] == [
        f"{SOURCE}: the file holds no requests; a batch job needs at least one"
    ]


def test_problems_are_listed_up_to_25_by_default() -> None:
    with pytest.raises(InputValidationError) as caught:
        scan("{bad\n" * 30)
    assert (len(caught.value.issues), caught.value.more) == (25, 5)


def test_lines_after_an_overlong_one_are_still_checked() -> None:
    data = vertex_line("k0", text="x" * 1000) + "\n" + "{bad\n"
    with pytest.raises(InputValidationError) as caught:
        scan(data, limits=JobLimits(max_requests=10, max_bytes=10**6, max_line_bytes=200))
    assert [issue.location for issue in caught.value.issues] == [f"{SOURCE}:1", f"{SOURCE}:2"]


def test_one_request_of_exactly_the_byte_limit_fits_a_job_and_one_byte_more_does_not() -> None:
    line = vertex_line("k0") + "\n"
    size = len(line.encode())
    assert scan(line, limits=JobLimits(10, size)).bytes == size
    with pytest.raises(InputValidationError) as caught:
        scan(line, limits=JobLimits(10, size - 1), enforce_limits=False)
    assert [str(issue) for issue in caught.value.issues] == [
        f"{SOURCE}:1: one request of {size:,} bytes exceeds the Vertex AI batch limit of {size - 1:,} bytes "
        "per job; it cannot be sharded"
    ]


def test_the_scan_names_its_source_format_and_numbered_shards() -> None:
    data = "".join(gemini_line(f"k{i}") + "\n" for i in range(5))
    result = scan(data, input_format="gemini_jsonl", limits=JobLimits(2, 10**6), enforce_limits=False)
    assert (result.source, result.input_format) == (SOURCE, "gemini_jsonl")
    assert [shard.index for shard in result.shards] == [0, 1, 2]


def test_a_line_that_goes_over_the_limit_in_the_next_chunk_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    long_line = vertex_line("k1", text="x" * 150)
    monkeypatch.setattr(jsonl_scan, "_CHUNK_BYTES", len(GOOD) + 100)  # its first 100 bytes in chunk one
    assert 100 < 200 < len(long_line) < 2 * len(GOOD) + 100
    with pytest.raises(InputValidationError) as caught:
        scan(GOOD + long_line + "\n", limits=JobLimits(max_requests=10, max_bytes=10**6, max_line_bytes=200))
    assert [str(issue) for issue in caught.value.issues] == [
        f"{SOURCE}:2: line is {len(long_line) + 1:,} bytes long (limit: 200 bytes per line); shorten the "
        "request or move large media to fileData URIs"
    ]


@pytest.mark.parametrize("final_newline", [True, False])
@pytest.mark.parametrize("chunk", [10**6, 64])  # the line in one chunk, or across several
def test_a_line_of_exactly_the_line_limit_is_read_and_one_byte_more_is_refused(
    monkeypatch: pytest.MonkeyPatch, chunk: int, final_newline: bool
) -> None:
    monkeypatch.setattr(jsonl_scan, "_CHUNK_BYTES", chunk)
    line = vertex_line("k1", text="x" * 200)
    end = "\n" if final_newline else ""
    exact = JobLimits(max_requests=10, max_bytes=10**6, max_line_bytes=len(line))
    assert scan(GOOD + line + end, limits=exact).requests == 2
    under = JobLimits(max_requests=10, max_bytes=10**6, max_line_bytes=len(line) - 1)
    with pytest.raises(InputValidationError) as caught:
        scan(GOOD + line + end, limits=under)
    assert [str(issue) for issue in caught.value.issues] == [
        f"{SOURCE}:2: line is {len(line) + len(end):,} bytes long (limit: {len(line) - 1:,} bytes per line); "
        "shorten the request or move large media to fileData URIs"
    ]


def test_one_blank_line_inside_the_file_is_one_problem_with_its_words() -> None:
    with pytest.raises(InputValidationError) as caught:
        scan(GOOD + "\n" + vertex_line("k1") + "\n" + vertex_line("k2") + "\n" + vertex_line("k3") + "\n")
    assert [str(issue) for issue in caught.value.issues] == [
        f"{SOURCE}:2: blank line inside the file; remove it"
    ]


@pytest.mark.parametrize(
    "nesting",
    [
        b"[" * 100_000 + b"]" * 100_000,  # deeper than the stdlib decoder reads (it recurses per level)
        b'{"a": ' * 1_100 + b"1" + b"}" * 1_100,
    ],
    ids=["arrays", "objects"],
)
def test_a_line_nested_too_deeply_is_a_problem_of_its_line_not_a_crash(nesting: bytes) -> None:
    line = (
        b'{"request": {"contents": [{"parts": [{"text": "x"}]}], "labels": {"gemini_batch_key": "k"}, '
        b'"generationConfig": {"responseMimeType": "application/json", "responseSchema": %s}}}\n' % nesting
    )
    with pytest.raises(InputValidationError) as raised:
        scan_jsonl(io.BytesIO(GOOD.encode() + line), source="deep.jsonl")
    assert "deep.jsonl:2: the line nests arrays or objects too deeply" in str(raised.value)
