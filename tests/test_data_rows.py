"""How labeled JSONL rows are read: what a row may hold, and what two rows may not disagree on."""

from __future__ import annotations

import pytest


def test_unicode_line_separators_inside_a_jsonl_string_do_not_split_its_line(tmp_path):
    """Before: str.splitlines() also split at U+2028, U+2029 and U+0085, which JSON strings may hold raw and which
    calibgate's own writers emit (ensure_ascii=False): drift's to-label.jsonl and retrain's merged train.jsonl were
    refused by plan and train as 'not valid JSON'."""
    from calibgate.data.jsonl import load_labeled
    from calibgate.paths import jsonl_lines

    data = tmp_path / "train.jsonl"
    data.write_text('{"text": "a\u2028b", "label": "x"}\r\n{"text": "c\u0085d\u2029", "label": "y"}\n', encoding="utf-8")
    assert list(load_labeled(data).texts) == ["a\u2028b", "c\u0085d\u2029"]
    assert jsonl_lines("a\r\nb\n\nc") == ["a", "b", "", "c"] and jsonl_lines("") == []


@pytest.mark.parametrize("a, b", [("caf\u00e9", "cafe\u0301"), ("card_arrival", "card_arrival "), ("CARD", "card"),
                                  ("two  words", "two words"), ("card", "card\u200b"), ("card", "ca\u00adrd"),
                                  ("card", "\ufeffcard"), ("two words", "two\u00a0words")])
def test_labels_that_read_the_same_are_one_class_written_two_ways(tmp_path, a, b):
    """Before: NFC and NFD 'café', a trailing space or another case made two classes; the plan said 'Labels pass'
    and train made a model with two identical-looking class names."""
    import json

    from calibgate.data.jsonl import load_labeled
    from calibgate.errors import DataError

    path = tmp_path / "train.jsonl"
    rows = [("x1", a), ("x2", b), ("x3", "other"), ("x4", "other")]
    path.write_text("".join(json.dumps({"text": t, "label": label}) + "\n" for t, label in rows), encoding="utf-8")
    with pytest.raises(DataError, match="differ only in case, spaces, invisible characters or Unicode") as info:
        load_labeled(path)
    assert ascii(a) in str(info.value) and ascii(b) in str(info.value)


def test_a_null_label_is_a_row_not_labeled_yet(tmp_path):
    from calibgate.data.jsonl import load_labeled
    from calibgate.errors import DataError

    path = tmp_path / "train.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": null}\n', encoding="utf-8")
    with pytest.raises(DataError, match="'label' is null") as info:
        load_labeled(path)
    assert "None" not in info.value.fix


@pytest.mark.parametrize("a, b", [("Ma\u00dfe", "Masse"), ("m\u00b2", "m2"), ("Apple", "apple pie")])
def test_labels_that_are_different_words_stay_two_classes(tmp_path, a, b):
    import json

    from calibgate.data.jsonl import load_labeled

    path = tmp_path / "train.jsonl"
    rows = [("x1", a), ("x2", b)]
    path.write_text("".join(json.dumps({"text": t, "label": label}) + "\n" for t, label in rows), encoding="utf-8")
    assert load_labeled(path).n_classes == 2


@pytest.mark.parametrize("encoding, wide", [("utf-16", "UTF-16"), ("utf-32", "UTF-32")])
def test_a_utf16_file_is_named_as_such_with_the_iconv_that_fixes_it(tmp_path, encoding, wide):
    """Before: a file PowerShell's '>' or Notepad's 'Unicode' wrote was 'not valid UTF-8 (byte 0xff)' with the fix
    'iconv -f latin1', which turns it into NUL-riddled text; the config and policy readers said 'not UTF-8' alone."""
    from calibgate.data.jsonl import load_labeled
    from calibgate.errors import ConfigError, DataError, PolicyError
    from calibgate.policy.loader import load_policy
    from calibgate.settings import load_config

    (tmp_path / "d.jsonl").write_bytes('{"text": "a", "label": "x"}\n'.encode(encoding))
    with pytest.raises(DataError, match=f"d.jsonl: is {wide} text .*iconv -f {wide} -t UTF-8 d.jsonl"):
        load_labeled(tmp_path / "d.jsonl")
    (tmp_path / "calibgate.yaml").write_bytes("name: router\n".encode(encoding))
    with pytest.raises(ConfigError, match=f"config is {wide} text .*iconv -f {wide} -t UTF-8 calibgate.yaml"):
        load_config(tmp_path / "calibgate.yaml")
    (tmp_path / "policy.yaml").write_bytes("schema_version: 1\n".encode(encoding))
    with pytest.raises(PolicyError, match=f"{wide} text, not UTF-8: re-encode it, e.g. iconv -f {wide}"):
        load_policy(tmp_path / "policy.yaml")


@pytest.mark.parametrize("label, problem", [("\u200b", "has no visible character"), ("\u200b\u2800", "has no visible character"),
                                            ("card\narrival", "holds a control character"), ("tab\tx", "holds a control character"),
                                            ("\x1b[31mred", "holds a control character"), ("ok\x00", "holds a control character")])
def test_a_label_must_be_a_name_that_can_be_read_on_one_line(tmp_path, label, problem):
    """Texts with nothing to read were refused by every reader, labels not: a class named by a zero-width space trained
    and was reported as an empty name; a newline or ESC in a class name split the model card's list of labels and
    reached the terminal in plan's tables."""
    import json

    from calibgate.data.jsonl import load_labeled
    from calibgate.errors import DataError

    data = tmp_path / "train.jsonl"
    data.write_text(json.dumps({"text": "my card", "label": "card"}) + "\n" + json.dumps({"text": "it", "label": label}) + "\n")
    with pytest.raises(DataError, match=f"train.jsonl:2: 'label' .*{problem}"):
        load_labeled(data)
    data.write_text(json.dumps({"text": "my card", "label": "card"}) + "\n" + json.dumps({"text": "it", "label": "\u00e9t\u00e9 \u2014 \u0645\u0631\u062d\u0628\u0627"}) + "\n")
    assert load_labeled(data).label_names == ("card", "\u00e9t\u00e9 \u2014 \u0645\u0631\u062d\u0628\u0627")


def test_rows_ended_by_bare_carriage_returns_are_named_as_such(tmp_path):
    """Before: a file saved with CR-only line ends read as one line, 'not valid JSON (Extra data at column 29)'."""
    from calibgate.data.jsonl import load_labeled
    from calibgate.errors import DataError

    path = tmp_path / "old-mac.jsonl"
    path.write_bytes(b'{"text": "a", "label": "x"}\r{"text": "b", "label": "y"}\r')
    with pytest.raises(DataError, match="bare carriage return") as info:
        load_labeled(path)
    assert "tr '\\r' '\\n'" in info.value.fix
