"""The fast reading of a JSONL line (orjson) never decides otherwise than the exact one (stdlib).

``jsonl_scan._check_line`` answers a line it can prove fine from orjson, and reads any other line
again with the strict stdlib decoder (``_examine_line``), which reports each problem with its
column. These tests prove the two agree, verdict and message, on generated lines: good requests,
and the same requests broken in the ways the fast reading must not miss (duplicate members at
any depth, also behind ``\\u003a`` escapes; integers beyond 64 bits; NaN and Infinity; lone
surrogates; byte order marks; invalid UTF-8; control characters; truncations and byte flips).
"""

from __future__ import annotations

import io
import json
import random
from typing import Any

import orjson
import pytest

from gemini_batch.pipeline import findings, jsonl_scan, typed_reading
from gemini_batch.pipeline.findings import KeyIndex
from gemini_batch.pipeline.request_shape import KEY_LABEL
from gemini_batch.pipeline.typed_reading import no_duplicate_members, typed_keys, typed_line_key

FORMATS = ("vertex_jsonl", "gemini_jsonl")

# A JSON value whose objects are lists of (name, value) pairs, so a generated text can repeat a
# member name, as a file can.
Pairs = list


def _part(rnd: random.Random, index: int) -> Pairs:
    text = rnd.choice(["Hello", "Résumé: 東京 ключ", 'a:b "quoted" \\ back', " ", "", "x" * 300, "tab\there"])
    part: Pairs = [("text", text if rnd.random() < 0.9 else rnd.choice([7, None]))]
    roll = rnd.random()
    if roll < 0.15:
        uri = rnd.choice([f"gs://b/{index}.png", f"gs://b/{index}.png", "", " "])
        part = [("fileData", [("mimeType", "image/png"), ("fileUri", uri)][: rnd.choice([2, 2, 1])])]
    elif roll < 0.22:
        blob = [("mimeType", rnd.choice(["image/png", "", "\u2003"])), ("data", "aGk=")]
        part = [(rnd.choice(["inlineData", "inline_data"]), blob)]
    elif roll < 0.25:
        part.append(("fileData", [("mimeType", "image/png"), ("fileUri", "gs://b/x.png")]))
    elif roll < 0.28:
        part = [("functionCall", [("name", "f"), ("args", [("a", 1)])])]
    elif roll < 0.30:
        part = [("thought", True)]
    return part


def _generation_config(rnd: random.Random) -> Pairs:
    config: Pairs = [
        ("temperature", rnd.choice([0.2, 2, 2.0000000000000001, 2.000000000000001, -0.0, 1e-400, True, "1"])),
        ("maxOutputTokens", rnd.choice([1024, 0, 2**63, 2**64 + 1, -(2**63) - 1, 1.0])),
    ]
    if rnd.random() < 0.3:
        config.append(
            (rnd.choice(["topK", "top_k", "candidateCount", "topP"]), rnd.choice([40, 40.0, 0, 0.5, 3]))
        )
    if rnd.random() < 0.2:
        config.append(
            ("thinkingConfig", [("thinkingBudget", 128), *([("includeThoughts", 1)] * rnd.randint(0, 1))])
        )
    if rnd.random() < 0.5:
        if rnd.random() < 0.8:
            config.append(("responseMimeType", rnd.choice(["application/json", "text/x.enum", "text/plain"])))
        properties = [("a:b", [("type", "STRING")])]
        if rnd.random() < 0.2:
            properties.append(
                ("n", [("type", "NUMBER"), ("maximum", rnd.choice([10, 1e308])), ("unknown", 1)])
            )
        schema = [("type", "OBJECT"), ("properties", properties), ("required", ["a:b"])]
        config.append(("responseSchema", schema))
    return config


def _request(rnd: random.Random, index: int) -> Pairs:
    role = rnd.choice(["user"] * 6 + ["model", "model", "assistant", None])
    parts = [_part(rnd, index) for _ in range(rnd.choice([1] * 6 + [2, 2, 0]))]
    content: Pairs = [("role", role), ("parts", parts)]
    label_key = rnd.choice([KEY_LABEL] * 18 + ["Key", "k\n"])
    labels: Pairs = [(label_key, rnd.choice([f"row-{index}"] * 17 + ["", "Row", "row\n"]))]
    request: Pairs = [("contents", [content] if rnd.random() < 0.95 else []), ("labels", labels)]
    if rnd.random() < 0.3:
        request.append(("generationConfig", _generation_config(rnd)))
    if rnd.random() < 0.15:
        instruction: Pairs = [("parts", [_part(rnd, index)])]
        request.append((rnd.choice(["systemInstruction", "system_instruction"]), instruction))
    if rnd.random() < 0.1:
        request.append(
            ("safetySettings", [[("category", "HARM_CATEGORY_HARASSMENT"), ("threshold", "BLOCK_NONE")]])
        )
    if rnd.random() < 0.05:
        request.append(("tools", [[("codeExecution", [])]]))
    if rnd.random() < 0.1:
        request.append(("generationConfg", [("temperature", 1)]))
    line: Pairs = [("request", request)]
    if rnd.random() < 0.5:
        line.insert(0, ("key", rnd.choice([f"k{index}", "", 7, None])))
    return line


def _dicts(value: Any) -> list[Pairs]:
    """Every object (a list of pairs) inside ``value``, outermost first."""
    found: list[Pairs] = []
    if isinstance(value, list) and all(isinstance(item, tuple) for item in value) and value:
        found.append(value)
        for _, item in value:
            found += _dicts(item)
    elif isinstance(value, list):
        for item in value:
            found += _dicts(item)
    return found


def _encode(value: Any, rnd: random.Random, escape_colons: bool) -> str:
    if isinstance(value, list) and value and all(isinstance(item, tuple) for item in value):
        members = (f"{_string(k, rnd, escape_colons)}: {_encode(v, rnd, escape_colons)}" for k, v in value)
        return "{" + ", ".join(members) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_encode(item, rnd, escape_colons) for item in value) + "]"
    if isinstance(value, str):
        return _string(value, rnd, escape_colons)
    return json.dumps(value)


def _string(text: str, rnd: random.Random, escape_colons: bool) -> str:
    encoded = json.dumps(text, ensure_ascii=rnd.random() < 0.5)
    return encoded.replace(":", "\\u003a") if escape_colons else encoded


def _mutate(pairs: Pairs, rnd: random.Random) -> Pairs:
    """Repeat a member name in one of the objects (same or another value)."""
    target = rnd.choice(_dicts(pairs))
    name, value = rnd.choice(target)
    target.insert(rnd.randrange(len(target) + 1), (name, value if rnd.random() < 0.5 else "other"))
    return pairs


_BREAKS = [
    lambda t: t.replace('"Hello"', "NaN", 1),
    lambda t: t.replace("1024", "Infinity", 1),
    lambda t: t.replace("1024", "-Infinity", 1),
    lambda t: t.replace("1024", "1e400", 1),
    lambda t: t.replace("Hello", "\\ud800", 1),
    lambda t: t.replace("Hello", "\\udc00x", 1),
    lambda t: t.replace("Hello", "\\ud83d\\ude00", 1),
    lambda t: t.replace("Hello", "\\ud83d\\u0041", 1),
    lambda t: t.replace("Hello", "\\\\ud800", 1),
    lambda t: t.replace("Hello", "\x01", 1),
    lambda t: t.replace("Hello", "\x7f", 1),
    lambda t: "\ufeff" + t,
    lambda t: t + " \r",
    lambda t: t + " x",
    lambda t: t[: len(t) // 2],
    lambda t: t.replace("1024", "01024", 1),
    lambda t: t.replace("1024", "1024.", 1),
    lambda t: t.replace("1024", "18446744073709551616", 1),
    lambda t: t.replace("1024", "-9223372036854775809", 1),
    lambda t: t.replace('"a:b"', '"a\\u003Ab"', 1),
    lambda t: "[" + t + "]",
    lambda t: t.replace('"request"', '"requests"', 1),
]

_BAD_BYTES = [
    b"\xff",
    b"\xc0\x80",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xe6\x9d",
    b"\x80",
    b"\xf5\x80\x80\x80",
]


def _lines(seed: int, count: int) -> list[bytes]:
    rnd = random.Random(seed)
    lines = []
    for index in range(count):
        pairs = _request(rnd, index)
        if rnd.random() < 0.3:
            pairs = _mutate(pairs, rnd)
        text = _encode(pairs, rnd, escape_colons=rnd.random() < 0.15)
        if rnd.random() < 0.35:
            text = rnd.choice(_BREAKS)(text)
        raw = text.encode("utf-8")
        if rnd.random() < 0.08:
            at = rnd.randrange(len(raw))
            raw = raw[:at] + rnd.choice(_BAD_BYTES) + raw[at:]
        if rnd.random() < 0.05:
            at = rnd.randrange(len(raw))
            raw = raw[:at] + bytes([rnd.randrange(256)]) + raw[at + 1 :]
        lines.append(raw)
    return lines


@pytest.mark.parametrize("seed", range(4))
def test_fast_and_exact_readings_agree_on_generated_lines(seed: int) -> None:
    decided = {"typed": 0, "orjson": 0}
    for number, content in enumerate(_lines(seed, 800)):
        for input_format in FORMATS:
            first = number % 7 == 0
            exact = jsonl_scan._examine_line(content, input_format, KEY_LABEL, first)
            assert jsonl_scan._check_line(content, input_format, KEY_LABEL, first) == exact, content
            # Each fast reading accepts only what the exact one accepts, with the same key.
            for reading, key in (
                ("typed", typed_line_key(content, input_format, KEY_LABEL)),
                ("orjson", jsonl_scan._clean_line_key(content, input_format, KEY_LABEL)),
            ):
                if key is not None:
                    decided[reading] += 1
                    assert exact == ([], key), (reading, content)
    # The fast readings do decide good lines (the generator breaks about two lines in three).
    assert decided["typed"] > 25 and decided["orjson"] >= decided["typed"], decided


def _line(text: str) -> bytes:
    return text.encode("utf-8")


GOOD = '{"request": {"contents": [{"parts": [{"text": "a:b"}]}], "labels": {"gemini_batch_key": "k"}}}'

# Lines the fast reading must not accept: each is refused by the exact reading.
NOT_FAST = [
    ("dup-top", '{"request": {}, ' + GOOD[1:]),
    ("dup-labels", GOOD.replace('"labels": {', '"labels": {"gemini_batch_key": "j", ')),
    ("dup-part", GOOD.replace('{"text": "a:b"}', '{"text": "a:b", "text": "c"}')),
    (
        "dup-behind-escaped-colons",
        GOOD.replace('"a:b"', '"\\u003a\\u003a"').replace('"k"}', '"k", "x": 1, "x": 2}'),
    ),
    ("nan", GOOD.replace('"a:b"', "NaN")),
    ("lone-surrogate", GOOD.replace("a:b", "\\ud800")),
    ("big-int-key", '{"key": 18446744073709551616, "request": {"contents": [{"parts": [{"text": "x"}]}]}}'),
    ("bom", "\ufeff" + GOOD),
]


@pytest.mark.parametrize(("name", "text"), NOT_FAST, ids=[case[0] for case in NOT_FAST])
def test_fast_reading_refuses_what_the_exact_one_refuses(name: str, text: str) -> None:
    content = _line(text)
    fmt = "gemini_jsonl" if name.startswith("big-int") else "vertex_jsonl"
    assert jsonl_scan._clean_line_key(content, fmt, KEY_LABEL) is None
    assert typed_line_key(content, fmt, KEY_LABEL) is None
    problems, _ = jsonl_scan._check_line(content, fmt, KEY_LABEL, True)
    assert problems


@pytest.mark.parametrize(
    "text",
    [
        GOOD,
        GOOD.replace('"a:b"', '"\\u00e9:\\n"'),  # escapes, but no escaped colon: still decided fast
        GOOD.replace('"a:b"', '"a\\\\b"'),
        '{"request": {"contents": [{"parts": [{"text": "x"}]}], "labels": {"gemini_batch_key": "k"}}} \r',
    ],
)
def test_fast_reading_decides_good_lines(text: str) -> None:
    assert jsonl_scan._clean_line_key(_line(text), "vertex_jsonl", KEY_LABEL) == "k"
    assert typed_line_key(_line(text), "vertex_jsonl", KEY_LABEL) == "k"


def test_no_duplicate_members_counts_every_colon() -> None:
    assert no_duplicate_members([b'{"a": "x:y", "b": {"c": 1}}'], [{"a": "x:y", "b": {"c": 1}}], orjson.dumps)
    assert not no_duplicate_members([b'{"a": 1, "a": 1}'], [{"a": 1}], orjson.dumps)
    assert not no_duplicate_members([b'{"a": "\\u003a"}'], [{"a": ":"}], orjson.dumps)  # undecided: False
    assert not no_duplicate_members([b'{"a": 1e400}'], [{"a": 2**1100}], orjson.dumps)  # cannot encode: False


def test_key_index_blake2b_digest_finds_the_same_duplicates(monkeypatch: pytest.MonkeyPatch) -> None:
    for digest in (hash, findings._blake2b_digest):
        monkeypatch.setattr(findings, "_digest", digest)
        index = KeyIndex()
        for line, key in enumerate(["a", "b", "a", "c", "b", "a"], start=1):
            index.add(key, line)
        assert list(index.duplicates()) == [(3, 1), (5, 2), (6, 1)]


@pytest.mark.parametrize("seed", range(4))
def test_a_batch_gets_the_keys_its_lines_get_one_by_one(seed: int) -> None:
    """One duplicate-member check covers a batch: a broken line among good ones (a duplicate
    member, an escaped colon) loses its own key and no other line's."""
    lines: list[bytes | None] = list(_lines(seed, 600))
    lines[::37] = [None] * len(lines[::37])  # a line over the length limit is never read
    for input_format in FORMATS:
        one_by_one = [typed_line_key(line, input_format, KEY_LABEL) if line else None for line in lines]
        assert typed_keys(lines, input_format, KEY_LABEL) == one_by_one


@pytest.mark.parametrize(("name", "text"), NOT_FAST[:4], ids=[case[0] for case in NOT_FAST[:4]])
def test_a_duplicate_in_a_full_batch_is_found_in_its_line(name: str, text: str) -> None:
    good = _line(GOOD)
    lines = [good] * 300
    lines[257] = _line(text)  # in the second batch (256 lines a batch)
    keys = typed_keys(lines, "vertex_jsonl", KEY_LABEL)
    assert keys[257] is None
    assert keys[:257] == ["k"] * 257 and keys[258:] == ["k"] * 42


def test_a_batch_ends_at_its_byte_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """Long lines close a batch before 256 lines, so a batch's copies stay small."""
    checked: list[int] = []
    check = typed_reading._drop_duplicates
    monkeypatch.setattr(
        typed_reading,
        "_drop_duplicates",
        lambda keys, batch, *rest: checked.append(len(batch)) or check(keys, batch, *rest),
    )
    long_good = _line(GOOD.replace('"a:b"', '"' + "x" * 100_000 + '"'))
    duplicate = _line(NOT_FAST[2][1].replace('"a:b"', '"' + "x" * 100_000 + '"'))
    keys = typed_keys(
        [long_good, long_good, duplicate, long_good, long_good, long_good], "vertex_jsonl", KEY_LABEL
    )
    assert keys == ["k", "k", None, "k", "k", "k"]
    assert checked == [3, 3]  # 256 KiB reached at the third line of each batch


def _refuse(name: str) -> Any:
    def refused(*args: object) -> Any:
        raise AssertionError(f"{name} read a line a faster reading decides")

    return refused


def test_a_common_line_is_decided_by_the_typed_reading_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsonl_scan, "_clean_line_key", _refuse("the orjson reading"))
    monkeypatch.setattr(jsonl_scan, "_examine_line", _refuse("the exact reading"))
    assert jsonl_scan._check_line(_line(GOOD), "vertex_jsonl", KEY_LABEL, True) == ([], "k")
    gemini = '{"key": "g", "request": {"contents": [{"parts": [{"text": "x"}]}]}}'
    assert jsonl_scan._check_line(_line(gemini), "gemini_jsonl", KEY_LABEL, True) == ([], "g")


def test_a_fine_line_the_typed_reading_declines_is_decided_by_the_orjson_reading(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(jsonl_scan, "_examine_line", _refuse("the exact reading"))
    tools = GOOD.replace('"labels"', '"tools": [{"codeExecution": {}}], "labels"')  # not typed
    assert typed_line_key(_line(tools), "vertex_jsonl", KEY_LABEL) is None
    assert jsonl_scan._check_line(_line(tools), "vertex_jsonl", KEY_LABEL, True) == ([], "k")


@pytest.mark.parametrize("input_format", FORMATS)
def test_a_good_file_is_read_by_the_typed_reading_alone(
    monkeypatch: pytest.MonkeyPatch, input_format: str
) -> None:
    monkeypatch.setattr(jsonl_scan, "_check_line", _refuse("a slower reading"))
    lines = [
        f'{{"key": "g{i}", "request": {{"contents": [{{"parts": [{{"text": "x{i}"}}]}}]}}}}'
        if input_format == "gemini_jsonl"
        else GOOD.replace('"k"', f'"k{i}"')
        for i in range(600)
    ]
    scan = jsonl_scan.scan_jsonl(
        io.BytesIO(("\n".join(lines) + "\n").encode()), source="f", input_format=input_format
    )
    assert scan.requests == 600
