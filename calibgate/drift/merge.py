"""Merging newly labeled rows into the training set: dedup, label-space check, conflicts reported.

Texts are compared after collapsing whitespace and case-folding, so
"My card  is lost" and "my card is lost" are one text. A text already in the
training data with the same label is a duplicate (skipped); with another
label, or labeled two ways within the new rows, it is a conflict: skipped and
listed in the PR, never silently resolved.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from calibgate.errors import DataError


@dataclass(frozen=True)
class Conflict:
    text: str
    labels: tuple[str, ...]  # the training data's label first when there is one
    where: str  # "training data" or "incoming data"


@dataclass(frozen=True)
class MergeReport:
    """What :func:`merge_labels` did; ``added`` are the rows appended to the training data."""

    incoming_rows: int
    added: list[dict] = field(default_factory=list)
    duplicates: int = 0
    conflicts: list[Conflict] = field(default_factory=list)
    new_labels: list[str] = field(default_factory=list)
    label_counts: dict[str, int] = field(default_factory=dict)  # of the added rows


def read_incoming(path: Path) -> list[dict]:
    """Labeled rows from a JSONL file or every ``*.jsonl`` in a directory (sorted), each checked like training data."""
    from calibgate.data.jsonl import load_labeled

    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    rows: list[dict] = []
    for file in files:
        data = load_labeled(file, min_classes=1)
        rows += [{"text": t, "label": label} for t, label in zip(data.texts, data.label_strings(), strict=True)]
    return rows


def merge_labels(train: list[dict], incoming: list[dict], *, allow_new_labels: bool = False) -> MergeReport:
    """Rows of ``incoming`` to append to ``train`` (see the module docstring); raises on labels outside the label space."""
    known = {row["label"] for row in train}
    _check_spellings(known, {row["label"] for row in incoming})
    new_labels = sorted({row["label"] for row in incoming} - known)
    if new_labels and not allow_new_labels:
        raise DataError(
            f"incoming data has label(s) {new_labels[:5]} that the training data does not know",
            fix="fix those labels, or pass --allow-new-labels to grow the label space on purpose",
        )
    existing: dict[str, str] = {}
    for row in train:
        existing.setdefault(_key(row["text"]), row["label"])
    by_key: dict[str, list[dict]] = {}
    for row in incoming:
        by_key.setdefault(_key(row["text"]), []).append(row)
    added, conflicts, duplicates = [], [], 0
    for key, rows in by_key.items():
        labels = sorted({r["label"] for r in rows})
        duplicates += len(rows) - 1 if len(labels) == 1 else 0
        if key in existing:
            if labels == [existing[key]]:
                duplicates += 1
            else:
                others = tuple(label for label in labels if label != existing[key])
                conflicts.append(Conflict(rows[0]["text"], (existing[key], *others), "training data"))
        elif len(labels) > 1:
            conflicts.append(Conflict(rows[0]["text"], tuple(labels), "incoming data"))
        else:
            added.append({"text": rows[0]["text"], "label": labels[0]})
    counts: dict[str, int] = {}
    for row in added:
        counts[row["label"]] = counts.get(row["label"], 0) + 1
    return MergeReport(
        incoming_rows=len(incoming), added=added, duplicates=duplicates, conflicts=conflicts,
        new_labels=new_labels, label_counts=dict(sorted(counts.items())),
    )


def _check_spellings(known: set[str], incoming: set[str]) -> None:
    """An incoming label that reads as a training label, or as another incoming one ('Card_Arrival' and 'card_arrival',
    NFC and NFD, a trailing space), is one class written two ways: merged, even with --allow-new-labels, it made two
    classes of one and a pull request whose training refused the data."""
    from calibgate.data.jsonl import label_key

    spelled = {label_key(label): label for label in sorted(known)}
    for label in sorted(incoming):
        other = spelled.setdefault(label_key(label), label)
        if other != label:
            where = "the training data's" if other in known else "another incoming row's"
            raise DataError(
                f"incoming label {ascii(label)} differs from {where} {ascii(other)} only in case, spaces, invisible "
                "characters or Unicode normalisation: one class written two ways, not a new class",
                fix=f"write it as {ascii(other)}" + (", the way the training data does" if other in known else
                                                       " on every incoming row (the same characters, case and spacing)"),
            )


def appended_text(original: str, added: list[dict]) -> str:
    """The training file's text with ``added`` appended as JSONL (existing lines kept byte for byte)."""
    if original and not original.endswith("\n"):
        original += "\n"
    return original + "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in added)


def _key(text: str) -> str:
    return " ".join(text.split()).casefold()
