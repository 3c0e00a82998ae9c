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
