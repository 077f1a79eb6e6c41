"""fingerprints.py: equal content, equal fingerprint; any change of a key or a request, a new one."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest
from google.cloud import bigquery

from gemini_batch.pipeline.fingerprints import file_fingerprint, gcs_object_fingerprint, table_fingerprint
from gemini_batch.pipeline.refs import TableRef

from .duck_bigquery import DuckBigQuery

BASE = [("a", {"x": 1}), ("b", {"y": [1, 2]}), ("c", {"z": "text"})]
_names = itertools.count()


def fingerprint_of(rows: list[tuple[str, dict]]) -> str:
    bq = DuckBigQuery()
    table = TableRef("proj", "ds", f"t{next(_names)}")
    bq.create_table(bigquery.Table(table.api_repr, schema=[
        bigquery.SchemaField("key", "STRING"), bigquery.SchemaField("request", "JSON"),
    ]))  # fmt: skip
    if rows:
        bq.insert(table.uri, [{"key": key, "request": request} for key, request in rows])
    return table_fingerprint(bq, table)


def test_the_row_order_does_not_change_a_table_fingerprint() -> None:
    fingerprint = fingerprint_of(BASE)
    assert fingerprint == fingerprint_of(list(reversed(BASE)))
    assert len(fingerprint) == 16 and int(fingerprint, 16) >= 0


@pytest.mark.parametrize(
    "changed",
    [
        BASE[:2],  # a row removed
        [*BASE, ("d", {"x": 1})],  # a row added
        [("a", {"x": 2}), *BASE[1:]],  # a request changed
        [("A", {"x": 1}), *BASE[1:]],  # a key changed
        [("b", {"x": 1}), ("a", {"y": [1, 2]}), BASE[2]],  # requests swapped between keys
        [*BASE, BASE[0]],  # a row twice (XOR alone would cancel it out)
        [],
    ],
    ids=["removed", "added", "request", "key", "swapped", "repeated", "empty"],
)
def test_any_change_of_the_rows_changes_a_table_fingerprint(changed) -> None:
    assert fingerprint_of(changed) != fingerprint_of(BASE)


def blob(**fields):
    return SimpleNamespace(bucket=SimpleNamespace(name="b"), name="in.jsonl", **fields)


def test_a_gcs_object_is_fingerprinted_by_its_checksums_and_size() -> None:
    one = gcs_object_fingerprint(blob(md5_hash="m", crc32c="c", size=10, generation=1))
    assert one == gcs_object_fingerprint(blob(md5_hash="m", crc32c="c", size=10, generation=2))
    for other in ({"md5_hash": "n"}, {"crc32c": "d"}, {"size": 11}):
        fields = {"md5_hash": "m", "crc32c": "c", "size": 10, **other}
        assert gcs_object_fingerprint(blob(**fields)) != one
    with pytest.raises(ValueError, match="no md5 or crc32c"):
        gcs_object_fingerprint(blob(md5_hash=None, crc32c=None, size=1))


def test_a_file_is_fingerprinted_by_its_sha256() -> None:
    file = SimpleNamespace(name="files/x", sha256_hash="abc", size_bytes=3)
    assert file_fingerprint(file) != file_fingerprint(
        SimpleNamespace(name="files/x", sha256_hash="abd", size_bytes=3)
    )
    with pytest.raises(ValueError, match="sha256_hash"):
        file_fingerprint(SimpleNamespace(name="files/x", sha256_hash=None))
