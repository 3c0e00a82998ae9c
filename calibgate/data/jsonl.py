"""JSONL readers that fail on the first bad line with the file, line and fix.

A labeled file holds one object per line, ``{"text": str, "label": str}``;
extra keys are kept out of the way. A production (unlabeled) file needs only
``text``. Validation happens here, once; everything downstream assumes valid
data (cleanlab ``rank.py`` style).
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from calibgate.errors import DataError
from calibgate.paths import decode_utf8, jsonl_lines, special_file


@dataclass(frozen=True)
class LabeledSet:
    """Texts with integer ``labels`` indexing ``label_names`` (sorted, unique)."""

    texts: tuple[str, ...]
    labels: np.ndarray
    label_names: tuple[str, ...]
    source: str = "<memory>"
    sha256: str = ""
    line_numbers: tuple[int, ...] = ()

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def n_classes(self) -> int:
        return len(self.label_names)

    def subset(self, index: Sequence[int] | np.ndarray) -> "LabeledSet":
        """Rows at ``index``, keeping the full label space."""
        index = np.asarray(index, dtype=int)
        return LabeledSet(
            texts=tuple(self.texts[i] for i in index),
            labels=self.labels[index],
            label_names=self.label_names,
            source=self.source,
            sha256=_hash_rows((self.texts[i], self.label_names[self.labels[i]]) for i in index),
            line_numbers=tuple(self.line_numbers[i] for i in index) if self.line_numbers else (),
        )

    def label_strings(self) -> list[str]:
        return [self.label_names[i] for i in self.labels]


@dataclass(frozen=True)
class UnlabeledSet:
    texts: tuple[str, ...]
    source: str = "<memory>"
    sha256: str = ""

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class _Row:
    line: int
    obj: dict = field(default_factory=dict)


def from_records(
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    label_names: Sequence[str] | None = None,
    source: str = "<memory>",
    line_numbers: Sequence[int] = (),
) -> LabeledSet:
    """Build a :class:`LabeledSet` from parallel lists of texts and string labels."""
    texts, labels = list(texts), list(labels)
    if len(texts) != len(labels):
        raise DataError(f"{source}: {len(texts)} texts but {len(labels)} labels", fix="pass one label per text")
    bad = next((i for i, (t, y) in enumerate(zip(texts, labels)) if not isinstance(t, str) or not isinstance(y, str)), None)
    if bad is not None:
        raise DataError(f"{source}: row {bad} has a text or label that is not a string", fix="pass strings for texts and labels")
    names = tuple(sorted(set(labels))) if label_names is None else tuple(label_names)
    lookup = {name: i for i, name in enumerate(names)}
    unknown = sorted(set(labels) - set(lookup))
    if unknown:
        raise DataError(
            f"{source}: label(s) {unknown[:5]} are not in the label space {list(names)[:10]}",
            fix="relabel those rows or train a model that knows these labels",
        )
    return LabeledSet(
        texts=tuple(texts),
        labels=np.array([lookup[label] for label in labels], dtype=np.int64),
        label_names=names,
        source=source,
        sha256=_hash_rows(zip(texts, labels)),
        line_numbers=tuple(line_numbers),
    )


def label_key(label: str) -> str:
    """What a person reads in a label: canonically composed (NFC), lower case, invisible format characters (a
    zero-width space, a soft hyphen, a BOM) dropped, spaces collapsed. Not NFKC or casefold: 'm²' and 'm2', 'Maße'
    and 'Masse' are different words."""
    visible = "".join(c for c in unicodedata.normalize("NFC", label) if unicodedata.category(c) != "Cf")
    return " ".join(visible.lower().split())


# letters and symbols that draw nothing: Hangul fillers, the braille blank, Khmer inherent vowels
_BLANK = frozenset("\u115f\u1160\u3164\uffa0\u2800\u17b4\u17b5")


def has_visible(text: str) -> bool:
    """Whether ``text`` draws anything: a character that is not a control, format character, space, combining mark
    alone or blank letter. A text of only zero-width spaces is no text, to train on, predict or serve."""
    return any(c.isprintable() and not c.isspace() and c not in _BLANK and unicodedata.category(c) not in ("Mn", "Me")
               for c in text)


def _check_label_spellings(path: Path, distinct: list[str], labels: list[str], lines: list[int]) -> None:
    """Two labels that read the same ('café' NFC and NFD, 'card ' and 'card', 'Card' and 'card') are one class
    written two ways: as two classes they trained a model with two identical names, and the plan called the
    split 'class overlap'."""
    seen: dict[str, str] = {}
    for label in distinct:
        other = seen.setdefault(label_key(label), label)
        if other != label:
            first = {name: lines[labels.index(name)] for name in (other, label)}
            raise DataError(
                f"{path}: labels {ascii(other)} (line {first[other]}) and {ascii(label)} (line {first[label]}) differ "
                "only in case, spaces, invisible characters or Unicode normalisation: one class written two ways",
                fix="write each class one way (the same characters, case and spacing) on every row",
            )


def load_labeled(
    path: str | Path,
    *,
    label_names: Sequence[str] | None = None,
    min_classes: int = 2,
    min_rows: int = 1,
    content: str | None = None,
) -> LabeledSet:
    """Read a labeled JSONL file, raising :class:`DataError` on the first problem.

    ``label_names`` closes the label space (e.g. a model's); a row with another
    label is an error. ``min_classes`` and ``min_rows`` reject data a task
    cannot learn from (one class, too few rows for the folds). ``content``: the
    file's text, already read (at a git revision, or before it is rewritten),
    checked the same way; ``path`` then only names it.
    """
    path = Path(path)
    texts: list[str] = []
    labels: list[str] = []
    lines: list[int] = []
    for row in _read_rows(path, content):
        obj = row.obj
        for key in ("text", "label"):
            if key not in obj:
                raise DataError(
                    f"{path}:{row.line}: missing key '{key}' (keys are {sorted(obj)[:6]})",
                    fix='write each line as {"text": "...", "label": "..."}',
                )
        text, label = obj["text"], obj["label"]
        if not isinstance(text, str):
            raise DataError(f"{path}:{row.line}: 'text' is {type(text).__name__}, not a string", fix="quote the text")
        if label is None:  # drift's and suggest-labels' to-label.jsonl leave null for the labeler to fill in
            raise DataError(f"{path}:{row.line}: 'label' is null: the row has no label yet",
                            fix="give the row its label, or remove it")
        if not isinstance(label, str):
            raise DataError(
                f"{path}:{row.line}: 'label' is {type(label).__name__} {label!r}, not a string",
                fix=f'write the label as a string, e.g. "label": "{label}"',
            )
        if not text.strip():
            raise DataError(f"{path}:{row.line}: 'text' is empty", fix="remove the line or fill in the text")
        if not has_visible(text):
            raise DataError(f"{path}:{row.line}: 'text' has no visible character (only control, format, space, mark or "
                            "blank characters)", fix="remove the line or fill in the text")
        if not label.strip():
            raise DataError(f"{path}:{row.line}: 'label' is empty", fix="give the row its label or remove it")
        if not has_visible(label):  # a class whose name draws nothing, as texts are refused: reports show an empty name
            raise DataError(f"{path}:{row.line}: 'label' {ascii(label)} has no visible character (only control, format, "
                            "space, mark or blank characters)", fix="give the row a label that can be read")
        if any(unicodedata.category(c) == "Cc" for c in label):
            # a newline, tab or ESC in a class name split the model card's and the terminal's lines, or recoloured them
            raise DataError(f"{path}:{row.line}: 'label' {ascii(label)} holds a control character (a line break, tab or "
                            "escape)", fix="write the label on one line, without control characters")
        if label_names is not None and label not in label_names:
            raise DataError(
                f"{path}:{row.line}: unknown label {label!r}; the model knows {len(label_names)} labels"
                f" ({', '.join(list(label_names)[:5])}{', ...' if len(label_names) > 5 else ''})",
                fix="fix the label, or retrain with this label in the training data",
            )
        texts.append(text)
        labels.append(label)
        lines.append(row.line)
    if not texts:
        raise DataError(f"{path}: the file has no rows", fix="add labeled rows, one JSON object per line")
    if len(texts) < min_rows:
        raise DataError(
            f"{path}: {len(texts)} rows, fewer than the {min_rows} this step needs",
            fix=f"add labeled rows (at least {min_rows}) or lower --folds",
        )
    distinct = sorted(set(labels))
    _check_label_spellings(path, distinct, labels, lines)
    if len(distinct) < min_classes:
        raise DataError(
            f"{path}: only one class ({distinct[0]!r}) in {len(texts)} rows; a classifier needs at least {min_classes}",
            fix="add examples of the other classes",
        )
    return from_records(texts, labels, label_names=label_names, source=str(path), line_numbers=lines)


def load_unlabeled(path: str | Path, *, min_rows: int = 1, content: str | None = None) -> UnlabeledSet:
    """Read a production sample: JSONL with a ``text`` key (a ``label`` is ignored); ``content`` as for
    :func:`load_labeled`."""
    path = Path(path)
    texts: list[str] = []
    for row in _read_rows(path, content):
        text = row.obj.get("text")
        if text is None:
            raise DataError(
                f"{path}:{row.line}: missing key 'text' (keys are {sorted(row.obj)[:6]})",
                fix='write each line as {"text": "..."}',
            )
        if not isinstance(text, str) or not text.strip() or not has_visible(text):
            raise DataError(f"{path}:{row.line}: 'text' must be a string with something to read", fix="fix or drop the line")
        texts.append(text)
    if len(texts) < min_rows:
        raise DataError(
            f"{path}: {len(texts)} rows, fewer than the {min_rows} this step needs",
            fix=f"add at least {min_rows} production texts",
        )
    return UnlabeledSet(texts=tuple(texts), source=str(path), sha256=_hash_rows((t,) for t in texts))


def load_texts(path: str | Path) -> list[str]:
    """Texts for prediction: JSONL objects with ``text``, or plain lines of text."""
    return list(load_unlabeled(path).texts)


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> None:
    """Write rows atomically (a temp file renamed into place)."""
    from calibgate.paths import atomic_write_text

    atomic_write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def _read_rows(path: Path, content: str | None = None) -> Iterable[_Row]:
    if content is not None:  # read already: the same rules as a file (a byte-order mark dropped as decode_utf8 drops it)
        yield from (_Row(number, obj) for number, obj in iter_objects(jsonl_lines(content.removeprefix("\ufeff")), source=str(path)))
        return
    if not path.exists():
        raise DataError(f"{path}: no such file", fix="check the path, or run 'dvc pull' to restore tracked data")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, not a JSONL file", fix="name the .jsonl file inside it")
    if kind := special_file(path):
        raise DataError(f"{path}: is {kind}, not a JSONL file", fix="write the rows to a regular file and name it")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror})", fix="check the file's permissions") from exc
    content = decode_utf8(raw, source=str(path), fix=f"re-encode the file, e.g. iconv -f latin1 -t utf-8 {path.name}")
    for number, obj in iter_objects(jsonl_lines(content), source=str(path)):
        yield _Row(number, obj)


class DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """``json.loads``'s ``object_pairs_hook``: the object, unless a key appears twice."""
    obj: dict = {}
    for key, value in pairs:
        if key in obj:
            raise DuplicateKey(key)
        obj[key] = value
    return obj


def iter_objects(lines: Iterable[str], *, source: str):
    """(line number, JSON object) for each non-blank line; :class:`DataError` at the first line that is not one."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line, object_pairs_hook=unique_keys)
        except DuplicateKey as exc:
            raise DataError(f"{source}:{number}: key '{exc.key}' appears twice (JSON readers keep one silently)",
                            fix="keep one value per key on each line") from None
        except json.JSONDecodeError as exc:
            if exc.msg == "Extra data" and "\r" in line[exc.pos - 1:exc.pos + 1]:  # CR-only line ends: one long line
                raise DataError(f"{source}:{number}: rows end in a bare carriage return (CR), not a newline",
                                fix="convert the line ends, e.g. tr '\\r' '\\n' < FILE > FILE.jsonl") from None
            raise DataError(
                f"{source}:{number}: not valid JSON ({exc.msg} at column {exc.colno})",
                fix="write one JSON object per line (JSONL)",
            ) from None
        except ValueError:  # valid JSON that Python will not read: an integer of more than 4,300 digits
            raise DataError(f"{source}:{number}: holds an integer too long to read (over 4,300 digits)",
                            fix="write numbers of ordinary size, or quote them as strings") from None
        except RecursionError:  # '[[[[...': json gives up before the stack does
            raise DataError(f"{source}:{number}: nested too deeply to be a row", fix='write each line as {"text": "...", "label": "..."}') from None
        if not isinstance(obj, dict):
            raise DataError(
                f"{source}:{number}: a JSON {type(obj).__name__}, not an object",
                fix='write each line as {"text": "...", "label": "..."}',
            )
        if "\\u" in line:  # only an escape can smuggle in a lone surrogate, which no UTF-8 text can hold
            try:
                json.dumps(obj, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError:
                raise DataError(
                    f"{source}:{number}: an unpaired surrogate escape (e.g. \\ud800), not text",
                    fix="write the character itself, or a valid surrogate pair",
                ) from None
        yield number, obj


def _hash_rows(rows: Iterable[tuple]) -> str:
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps(list(row), ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` through a unique temp file renamed into place."""
    from calibgate.paths import atomic_write_text

    atomic_write_text(path, text)
