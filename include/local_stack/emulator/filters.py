"""The Vertex AI list ``filter`` (AIP-160 subset) for batch prediction jobs.

Supported, combined with ``AND``, ``OR``, ``NOT`` / ``-`` and parentheses (AND binds tighter
than OR; a bare space means AND):

- ``display_name="x"`` (also ``displayName``), ``!=``, and ``display_name:"pre*"`` (prefix);
- ``state=JOB_STATE_RUNNING`` (quoted or not), ``state!=...``;
- ``labels.KEY="VALUE"``, ``labels.KEY!="VALUE"``, ``labels.KEY:*`` (has the label);
- ``model="publishers/google/models/gemini-2.5-flash"`` (also matches the bare model id);
- ``create_time`` / ``update_time`` / ``start_time`` / ``end_time`` (or camelCase) with
  ``= != < <= > >=`` against an RFC 3339 timestamp.

Invariant: a filter that cannot be parsed, or that names another field, raises
:class:`FilterError` (the API answers 400), never matches silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .jobs import Job, parse_rfc3339

Predicate = Callable[[Job], bool]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<lparen>\()|(?P<rparen>\))|
        (?P<op><=|>=|!=|=|<|>|:)|
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|
        (?P<minus>-(?=[A-Za-z(]))|
        (?P<word>[^\s()"'=<>!:]+)
    )""",
    re.VERBOSE,
)
_TIME_FIELDS = {
    "create_time": "create_time",
    "createTime": "create_time",
    "update_time": "update_time",
    "updateTime": "update_time",
    "start_time": "start_time",
    "startTime": "start_time",
    "end_time": "end_time",
    "endTime": "end_time",
}


class FilterError(ValueError):
    """The filter is not valid for batch prediction jobs."""


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise FilterError(f"Unable to parse filter {text!r} at position {pos}.")
        pos = match.end()
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "string":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        tokens.append((kind, value))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise FilterError(f"Unexpected end of filter {self.text!r}.")
        self.pos += 1
        return token

    def parse(self) -> Predicate:
        if not self.tokens:
            return lambda job: True
        predicate = self.expr()
        if self.peek() is not None:
            raise FilterError(f"Unexpected {self.peek()[1]!r} in filter {self.text!r}.")  # type: ignore[index]
        return predicate

    def expr(self) -> Predicate:
        terms = [self.conjunction()]
        while self._keyword("OR"):
            self.pos += 1
            terms.append(self.conjunction())
        if len(terms) == 1:
            return terms[0]
        return lambda job: any(t(job) for t in terms)

    def conjunction(self) -> Predicate:
        terms = [self.unary()]
        while True:
            token = self.peek()
            if token is None or token[0] == "rparen" or self._keyword("OR"):
                break
            if self._keyword("AND"):
                self.pos += 1
            terms.append(self.unary())
        if len(terms) == 1:
            return terms[0]
        return lambda job: all(t(job) for t in terms)

    def unary(self) -> Predicate:
        token = self.peek()
        if token is not None and (token[0] == "minus" or self._keyword("NOT")):
            self.pos += 1
            inner = self.unary()
            return lambda job: not inner(job)
        if token is not None and token[0] == "lparen":
            self.pos += 1
            inner = self.expr()
            if self.take()[0] != "rparen":
                raise FilterError(f"Missing ')' in filter {self.text!r}.")
            return inner
        return self.comparison()

    def _keyword(self, word: str) -> bool:
        token = self.peek()
        return token is not None and token[0] == "word" and token[1].upper() == word

    def comparison(self) -> Predicate:
        kind, field_name = self.take()
        if kind != "word":
            raise FilterError(f"Expected a field name, got {field_name!r} in filter {self.text!r}.")
        op_kind, op = self.take()
        if op_kind != "op":
            raise FilterError(f"Expected an operator after {field_name!r} in filter {self.text!r}.")
        value_kind, value = self.take()
        if value_kind not in ("word", "string"):
            raise FilterError(f"Expected a value after {field_name}{op} in filter {self.text!r}.")
        return _comparison(field_name, op, value)


def _text_match(actual: str | None, op: str, value: str) -> bool:
    if op == "=":
        return actual == value
    if op == "!=":
        return actual != value
    if op == ":":
        if value == "*":
            return actual is not None
        if value.endswith("*"):
            return actual is not None and actual.startswith(value[:-1])
        return actual is not None and value in actual
    raise FilterError(f"Operator {op!r} is not supported for text fields.")


def _comparison(field_name: str, op: str, value: str) -> Predicate:
    if field_name in ("display_name", "displayName"):
        return lambda job: _text_match(job.display_name, op, value)
    if field_name == "state":
        if op not in ("=", "!="):
            raise FilterError("Only = and != are supported for state.")
        return lambda job: (job.state == value) == (op == "=")
    if field_name == "model":
        if op not in ("=", "!="):
            raise FilterError("Only = and != are supported for model.")
        return lambda job: (value in (job.model, job.model_id)) == (op == "=")
    if field_name.startswith("labels."):
        key = field_name[len("labels.") :]
        return lambda job: _text_match(job.labels.get(key), op, value)
    if field_name in _TIME_FIELDS:
        attr = _TIME_FIELDS[field_name]
        try:
            bound = parse_rfc3339(value)
        except ValueError as exc:
            raise FilterError(f"Invalid timestamp {value!r} for {field_name}.") from exc
        compare = {
            "=": lambda a: a == bound,
            "!=": lambda a: a != bound,
            "<": lambda a: a < bound,
            "<=": lambda a: a <= bound,
            ">": lambda a: a > bound,
            ">=": lambda a: a >= bound,
        }.get(op)
        if compare is None:
            raise FilterError(f"Operator {op!r} is not supported for {field_name}.")

        def by_time(job: Job) -> bool:
            actual: Any = getattr(job, attr)
            return actual is not None and compare(actual)

        return by_time
    raise FilterError(
        f"Unsupported field {field_name!r} in filter; supported: display_name, state, model, "
        "labels.KEY, create_time, update_time, start_time, end_time."
    )


def parse_filter(text: str | None) -> Predicate:
    """A predicate over jobs for a ``filter`` query parameter (empty -> match all)."""
    return _Parser(text or "").parse()
