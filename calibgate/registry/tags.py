"""The git-tag grammar of the registry, compatible with gto (iterative/gto ``constants.py`` / ``tag.py``).

=================  ==============================  ===========================================
kind               tag                             meaning
=================  ==============================  ===========================================
``version``        ``name@v1.3.0``                 version v1.3.0 registered at the tagged commit
``stage``          ``name#production#7``           the version at the tagged commit enters a stage
``deregister``     ``name@v1.3.0!``                version deprecated (gto: deregistration)
``unassign``       ``name#production!#8``          the version at the tagged commit leaves a stage
``deprecate``      ``name@deprecated``             the whole model deprecated
=================  ==============================  ===========================================

Any form may end in ``#N``: gto's counter, one more than the largest counter
among the model's tags (:func:`next_counter`). Stage tags always carry it, so
two clones promoting at once compute the *same* tag name and the remote
accepts only one (``git push --atomic``).

Names follow gto: letters, digits, ``-``, ``_``, ``/``; first and last a letter
or digit. Versions are ``v`` + semver 2.0. Stages use the name grammar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Literal

from calibgate.errors import TagError
from calibgate.settings import MODEL_NAME as NAME
from calibgate.settings import is_model_name

TagKind = Literal["version", "stage", "deregister", "unassign", "deprecate"]

SEMVER = (
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?"
)
VERSION_RE = re.compile(f"^v{SEMVER}$")
TAG_RE = re.compile(
    rf"^(?P<name>{NAME})"
    rf"(?:@(?P<version>v{SEMVER})(?P<vcancel>!?)|#(?P<stage>{NAME})(?P<scancel>!?)|@(?P<deprecated>deprecated))"
    r"(?:#(?P<counter>[0-9]+))?$"
)


@dataclass(frozen=True)
class Tag:
    """A parsed registry tag; :func:`format_tag` and :func:`parse_tag` are inverses."""

    kind: TagKind
    name: str
    version: str | None = None
    stage: str | None = None
    counter: int | None = None

    def __str__(self) -> str:
        return format_tag(self)


def is_valid_name(value: str) -> bool:
    return is_model_name(value)


def is_valid_version(value: str) -> bool:
    return bool(VERSION_RE.match(value))


def format_tag(tag: Tag) -> str:
    """The git tag name for ``tag``; raises :class:`TagError` (a ValueError) on an invalid name, version, stage or counter."""
    if not is_valid_name(tag.name):
        raise TagError(f"invalid model name {tag.name!r}: letters, digits, '-', '_', '/', starting and ending alphanumeric")
    if tag.kind in ("version", "deregister"):
        if tag.version is None or not is_valid_version(tag.version):
            raise TagError(f"invalid version {tag.version!r}: expected 'v' + semver, e.g. v1.2.0")
        body = f"{tag.name}@{tag.version}" + ("!" if tag.kind == "deregister" else "")
    elif tag.kind in ("stage", "unassign"):
        if tag.stage is None or not is_valid_name(tag.stage):
            raise TagError(f"invalid stage {tag.stage!r}: letters, digits, '-', '_', '/'")
        body = f"{tag.name}#{tag.stage}" + ("!" if tag.kind == "unassign" else "")
    elif tag.kind == "deprecate":
        body = f"{tag.name}@deprecated"
    else:
        raise TagError(f"unknown tag kind {tag.kind!r}")
    if tag.counter is not None:
        if tag.counter < 0:
            raise TagError(f"invalid counter {tag.counter}")
        body += f"#{tag.counter}"
    return body


MAX_REF_COMPONENT = 200  # bytes: git keeps a loose ref as a file (plus ".lock" while writing); file systems allow 255


def check_creatable(tag: str) -> None:
    """Raise :class:`TagError` when git could not create ``tag`` on disk: checked before anything is stored or tagged."""
    long = [part for part in tag.split("/") if len(part.encode("utf-8")) > MAX_REF_COMPONENT]
    if long:
        raise TagError(f"the tag {tag[:40]}... has a part of {len(long[0].encode('utf-8'))} bytes; git stores tags as files, "
                       f"so each '/'-separated part of name, version and stage must stay under {MAX_REF_COMPONENT}",
                       fix="choose a shorter model name (e.g. ticket-router)")


def parse_tag(text: str) -> Tag:
    """Parse a registry tag name; raises :class:`TagError` (a ValueError) for anything else (release tags, typos)."""
    if not isinstance(text, str):
        raise TagError(f"a tag name is a string, not {type(text).__name__}", fix="pass the tag's name, e.g. model@v1.0.0")
    match = TAG_RE.match(text)
    if not match:
        raise TagError(f"{text!r} is not a registry tag (name@vX.Y.Z, name#stage#N, name@vX.Y.Z!, name@deprecated)")
    counter = int(match["counter"]) if match["counter"] is not None else None
    name = match["name"]
    if match["version"]:
        return Tag("deregister" if match["vcancel"] else "version", name, version=match["version"], counter=counter)
    if match["stage"]:
        return Tag("unassign" if match["scancel"] else "stage", name, stage=match["stage"], counter=counter)
    return Tag("deprecate", name, counter=counter)


def try_parse_tag(text: str) -> Tag | None:
    try:
        return parse_tag(text)
    except TagError:
        return None


def next_counter(tag_names: Iterable[str], name: str) -> int:
    """One more than the largest ``#N`` among ``name``'s tags (gto ``tag.name_tag``); 1 for the first."""
    counters = [t.counter for t in map(try_parse_tag, tag_names) if t and t.name == name and t.counter is not None]
    return max(counters, default=0) + 1


def semver_key(version: str) -> tuple:
    """Sort key for 'vX.Y.Z[-pre][+build]' in SemVer 2.0's precedence, as gto (the ``semver`` package) orders
    versions: a release after its pre-releases; pre-release identifiers compared one by one, numeric ones as numbers
    and before alphanumeric ones, a shorter list first when the rest is equal (rc.2 < rc.10 < rc.10.1 < rc.a);
    build metadata ignored."""
    core, _, pre = version[1:].split("+")[0].partition("-")
    major, minor, patch = (int(x) for x in core.split("."))
    identifiers = tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in pre.split(".")) if pre else ()
    return (major, minor, patch, pre == "", identifiers)


def bump(version: str | None, part: Literal["major", "minor", "patch"]) -> str:
    """Next version after ``version`` (None: the first, v1.0.0)."""
    if version is None:
        return "v1.0.0"
    major, minor, patch = semver_key(version)[:3]
    if part == "major":
        return f"v{major + 1}.0.0"
    if part == "minor":
        return f"v{major}.{minor + 1}.0"
    return f"v{major}.{minor}.{patch + 1}"
