"""The plan's terminal and markdown views with hostile label names and texts: escaped, never a crash.

A label or text is the data's: in markdown it must not close ``<details>``, open an HTML comment that hides the
rest of a PR comment, mention anyone or form a link; on the terminal it must not be read as rich markup.
"""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from calibgate.cli import cli
from tests.conftest import demo_data_dir, pick, read_jsonl

HOSTILE_TEXT = " </details><!-- @octocat [click me](https://evil.example/x) [/oops]"


@pytest.fixture(scope="module")
def hostile_calibration(tmp_path_factory):
    rows = read_jsonl(demo_data_dir() / "train.jsonl")
    labels = sorted({r["label"] for r in rows})[:3]
    picked = pick(rows, labels, 12)
    rename = {labels[0]: "[/oops]", labels[1]: "[blink]x", labels[2]: "<!-- @octocat"}
    path = tmp_path_factory.mktemp("views") / "cal.jsonl"
    with path.open("w") as fh:
        for i, row in enumerate(picked):
            label = rename[row["label"]]
            if i % 5 == 0:  # wrong labels with hostile texts: they come back as suspects
                label = rename[labels[(labels.index(row["label"]) + 1) % 3]]
            fh.write(json.dumps({"text": row["text"] + HOSTILE_TEXT, "label": label}) + "\n")
    return path


def _plan(tmp_path, calibration, model, *extra):
    out = tmp_path / "plan.json"
    result = CliRunner().invoke(cli, ["plan", "--fast", "--folds", "3", "--calibration", str(calibration), "--model", str(model),
                                      "-o", str(out), *extra])
    return result, out


def test_the_terminal_view_shows_markup_in_labels_literally(tmp_path, hostile_calibration, tiny_bert_dir):
    result, out = _plan(tmp_path, hostile_calibration, tiny_bert_dir)
    assert result.exit_code == 0, result.output
    assert "[/oops]" in result.stdout and "[blink]x" in result.stdout
    assert out.exists()


def test_the_markdown_view_neutralises_html_mentions_and_links(tmp_path, hostile_calibration, tiny_bert_dir):
    result, out = _plan(tmp_path, hostile_calibration, tiny_bert_dir, "--markdown")
    assert result.exit_code == 0, result.output
    markdown = result.stdout
    plan = json.loads(out.read_text())
    assert plan["signals"]["label_noise"]["suspects"], "the planted wrong labels should surface as suspects"
    assert markdown.count("<details>") == markdown.count("</details>") == 1  # only the view's own block
    outside_code = re.sub(r"`[^`\n]*`", "", markdown)  # a code span shows its text literally (how labels are shown)
    assert "<!--" not in outside_code and "@octocat" not in outside_code
    assert not re.search(r"(?<!\\)\]\(", outside_code), "an unescaped '](' forms a link"
    assert "evil.example" in markdown  # shown, as inert text
