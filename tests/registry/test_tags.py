"""The tag grammar: format_tag / parse_tag round trips, invalid names, and agreement with gto's parser."""

from __future__ import annotations

import pytest
from gto.tag import parse_name as gto_parse_name

from calibgate.registry.tags import Tag, bump, format_tag, next_counter, parse_tag, semver_key, try_parse_tag

VALID = [
    ("model@v1.0.0", Tag("version", "model", version="v1.0.0")),
    ("ticket-router@v12.3.45", Tag("version", "ticket-router", version="v12.3.45")),
    ("a1@v1.0.0-rc.1", Tag("version", "a1", version="v1.0.0-rc.1")),
    ("team/router_2@v0.1.0+build.7", Tag("version", "team/router_2", version="v0.1.0+build.7")),
    ("model@v1.0.0#3", Tag("version", "model", version="v1.0.0", counter=3)),
    ("model#production#7", Tag("stage", "model", stage="production", counter=7)),
    ("model#staging", Tag("stage", "model", stage="staging")),
    ("model#pre-prod/eu#12", Tag("stage", "model", stage="pre-prod/eu", counter=12)),
    ("model@v1.3.0!", Tag("deregister", "model", version="v1.3.0")),
    ("model@v1.3.0!#9", Tag("deregister", "model", version="v1.3.0", counter=9)),
    ("model#production!#8", Tag("unassign", "model", stage="production", counter=8)),
    ("model@deprecated", Tag("deprecate", "model")),
    ("model@deprecated#4", Tag("deprecate", "model", counter=4)),
]

INVALID = [
    "", "model", "v1.0.0", "model@1.0.0", "model@v1.0", "model@v01.0.0", "model@v1.0.0.0", "-model@v1.0.0",
    "model-@v1.0.0", "mo del@v1.0.0", "model@@v1.0.0", "model#", "model#production#", "model#production#x",
    "model#-prod#1", "model@v1.0.0#", "model@latest", "@v1.0.0", "model#prod#1#2", "model@v1.0.0!!",
    "release-2024", "model@deprecated!",
]


@pytest.mark.parametrize("text, tag", VALID)
def test_round_trip(text, tag):
    assert parse_tag(text) == tag
    assert format_tag(tag) == text
    assert str(parse_tag(text)) == text


@pytest.mark.parametrize("text", INVALID)
def test_invalid_names_rejected(text):
    with pytest.raises(ValueError):
        parse_tag(text)
    assert try_parse_tag(text) is None


@pytest.mark.parametrize("text, tag", VALID)
def test_gto_reads_our_tags_the_same_way(text, tag):
    parsed = gto_parse_name(text)
    assert parsed["name"] == tag.name
    assert parsed.get("version") == tag.version and parsed.get("stage") == tag.stage
    assert parsed.get("counter") == tag.counter
    assert parsed["action"].value == {"version": "register", "stage": "assign", "deregister": "deregister",
                                      "unassign": "unassign", "deprecate": "deprecate"}[tag.kind]


@pytest.mark.parametrize("text", [t for t in INVALID if t not in ("model@latest",)])
def test_gto_rejects_what_we_reject(text):
    assert gto_parse_name(text, raise_on_fail=False) == {}


@pytest.mark.parametrize("tag", [
    Tag("version", "bad name", version="v1.0.0"), Tag("version", "m", version="1.0.0"), Tag("stage", "m", stage="#x"),
    Tag("stage", "m", stage=None), Tag("version", "m", version="v1.0.0", counter=-1), Tag("nope", "m"),  # type: ignore[arg-type]
])
def test_format_refuses_invalid(tag):
    with pytest.raises(ValueError):
        format_tag(tag)


def test_next_counter_is_gto_s():
    tags = ["model@v1.0.0", "model#production#1", "model#staging#4", "other#production#9", "model@v1.1.0!#2", "junk"]
    assert next_counter(tags, "model") == 5
    assert next_counter(tags, "other") == 10
    assert next_counter([], "model") == 1


def test_bump_and_semver_order():
    assert bump(None, "minor") == "v1.0.0"
    assert bump("v1.2.3", "patch") == "v1.2.4" and bump("v1.2.3", "minor") == "v1.3.0" and bump("v1.2.3", "major") == "v2.0.0"
    order = ["v1.0.0-rc.1", "v1.0.0", "v1.2.0", "v1.10.0", "v2.0.0"]
    assert sorted(reversed(order), key=semver_key) == order


def test_pre_releases_sort_as_semver_and_gto_sort_them():
    """rc.10 sorted before rc.2 (compared as text), so 'latest' and 'registry list' disagreed with gto."""
    import random

    import semver

    versions = ["v1.0.0-alpha", "v1.0.0-alpha.1", "v1.0.0-alpha.beta", "v1.0.0-beta", "v1.0.0-beta.2", "v1.0.0-beta.11",
                "v1.0.0-rc.1", "v1.0.0-rc.2", "v1.0.0-rc.10", "v1.0.0-rc.10.1", "v1.0.0", "v1.0.1-0", "v1.0.1-1a", "v1.0.1"]
    shuffled = random.Random(0).sample(versions, len(versions))
    assert sorted(shuffled, key=semver_key) == versions  # SemVer 2.0's own example order, and more
    import functools

    by_semver = sorted(shuffled, key=functools.cmp_to_key(lambda a, b: semver.Version.parse(a[1:]).compare(b[1:])))
    assert by_semver == versions
