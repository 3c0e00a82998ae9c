"""Property-based fuzz (hypothesis) of the readers that take untrusted input: JSONL data files and registry tags.

Arbitrary bytes, text or JSON give a result or a :class:`CalibgateError` (one
line, exit code 2), never another exception.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calibgate.errors import CalibgateError

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
rows = st.dictionaries(st.sampled_from(["text", "label", "id", "meta", ""]), json_values, max_size=4) | json_values
row_lines = st.lists(rows.map(lambda r: json.dumps(r, allow_nan=True)), min_size=0, max_size=8).map("\n".join)
line_noise = st.lists(st.sampled_from(['{"text": "a", "label": "x"}', '{"text": "b", "label": "y"}', "", " ", "\ufeff", "{", "[]",
                                       '{"text": 1}', '{"label": "x"}', "\x00", '{"text": "\\ud800", "label": "x"}']),
                      max_size=8).map("\n".join)


def _check_one_line(exc: CalibgateError) -> None:
    assert exc.exit_code == 2 and "\n" not in exc.format(), exc.format()


def _read_all(data: bytes) -> None:
    from calibgate.data.jsonl import load_labeled, load_texts, load_unlabeled

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.jsonl"
        path.write_bytes(data)
        for read in (load_labeled, load_unlabeled, load_texts, lambda p: load_labeled(p, label_names=["x", "y"], min_classes=1)):
            try:
                read(path)
            except CalibgateError as exc:
                _check_one_line(exc)


@FUZZ
@given(st.binary(max_size=400))
def test_jsonl_readers_on_arbitrary_bytes(data):
    _read_all(data)


@FUZZ
@given(row_lines | line_noise)
def test_jsonl_readers_on_json_shaped_text(text):
    for encoding in ("utf-8", "utf-8-sig"):
        _read_all(text.encode(encoding, errors="surrogatepass"))


@FUZZ
@given(row_lines | line_noise)
def test_serving_text_reader(text):
    from calibgate.export.serving import read_texts

    try:
        read_texts(text.splitlines())
    except CalibgateError as exc:
        _check_one_line(exc)


@FUZZ
@given(st.lists(st.text(max_size=10) | st.integers() | st.none(), max_size=6), st.lists(st.text(max_size=5) | st.integers(), max_size=6))
def test_labeled_records(texts, labels):
    from calibgate.data.jsonl import from_records

    try:
        from_records(texts, labels)
    except CalibgateError as exc:
        _check_one_line(exc)


tag_alphabet = st.sampled_from(list("ab1Z-_/@#!v.+0") + ["production", "v1.2.0", "deprecated", "\x00", " ", "\n", "é"])
tag_like = st.lists(tag_alphabet, max_size=16).map("".join)


@FUZZ
@given(st.text(max_size=60) | tag_like)
def test_tag_parser(text):
    from calibgate.registry.tags import format_tag, parse_tag, try_parse_tag

    try:
        tag = parse_tag(text)
    except CalibgateError as exc:
        _check_one_line(exc)
        assert isinstance(exc, ValueError)  # callers that catch ValueError keep working
        assert try_parse_tag(text) is None
        return
    assert format_tag(tag) == text  # what parses formats back to itself


@FUZZ
@given(st.text(max_size=200) | st.builds(lambda head, body: f"{head}\n\n{json.dumps(body)}", st.text(max_size=10), json_values))
def test_tag_message_parser(message):
    from calibgate.registry.records import StageRecord, VersionRecord, parse_message

    for model in (VersionRecord, StageRecord):
        try:
            parse_message(message, model)
        except CalibgateError as exc:
            _check_one_line(exc)

