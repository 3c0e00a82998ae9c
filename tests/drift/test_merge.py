"""Merging incoming labels: duplicates skipped, conflicts reported not resolved, unknown labels refused."""

from __future__ import annotations

import pytest

from calibgate.drift.merge import appended_text, merge_labels
from calibgate.errors import DataError

TRAIN = [{"text": "My card is lost", "label": "card"}, {"text": "refund please", "label": "refund"}]


def test_merge_dedups_and_reports_conflicts():
    incoming = [
        {"text": "my card  is LOST", "label": "card"},  # duplicate after normalisation
        {"text": "Refund please", "label": "card"},  # conflicts with the training data
        {"text": "where is my money", "label": "refund"},
        {"text": "where is my money", "label": "refund"},  # repeated in incoming: one row added
        {"text": "cancel it", "label": "card"},
        {"text": "cancel it", "label": "refund"},  # labeled two ways within incoming
    ]
    report = merge_labels(TRAIN, incoming)
    assert report.added == [{"text": "where is my money", "label": "refund"}]
    assert report.duplicates == 2 and report.incoming_rows == 6
    assert {(c.where, c.labels) for c in report.conflicts} == {
        ("training data", ("refund", "card")), ("incoming data", ("card", "refund"))
    }
    assert report.label_counts == {"refund": 1}


def test_unknown_labels_are_refused_unless_allowed():
    with pytest.raises(DataError, match="fraud"):
        merge_labels(TRAIN, [{"text": "stolen", "label": "fraud"}])
    report = merge_labels(TRAIN, [{"text": "stolen", "label": "fraud"}], allow_new_labels=True)
    assert report.new_labels == ["fraud"] and len(report.added) == 1


def test_appended_text_keeps_existing_lines():
    assert appended_text('{"a": 1}', [{"text": "x", "label": "y"}]) == '{"a": 1}\n{"text": "x", "label": "y"}\n'


@pytest.mark.parametrize("incoming, allow, message", [
    ([{"text": "stolen", "label": "Card"}], False, "'Card' differs from the training data's 'card'"),
    ([{"text": "stolen", "label": "card "}], True, "'card ' differs from the training data's 'card'"),
    ([{"text": "stolen", "label": "ref\u200bund"}], True, "differs from the training data's 'refund'"),
    ([{"text": "stolen", "label": "caf\u00e9"}, {"text": "lost", "label": "cafe\u0301"}], True,
     "'caf\\\\xe9' differs from another incoming row's 'cafe\\\\u0301'"),
])
def test_a_label_written_another_way_is_refused_even_when_new_labels_are_allowed(incoming, allow, message):
    """'Card' beside 'card' was a new label, and the fix offered was --allow-new-labels, which merged it: two classes
    of one in the training data, and a pull request whose training refused the data."""
    with pytest.raises(DataError, match=message):
        merge_labels(TRAIN, incoming, allow_new_labels=allow)
    assert merge_labels(TRAIN, [{"text": "stolen", "label": "Fraud"}, {"text": "x", "label": "fraud2"}], allow_new_labels=True).new_labels == ["Fraud", "fraud2"]
