"""render_report: decision first, marker, sections, escaping, and the comment-size budget."""

from __future__ import annotations

import re

import pytest
from tests.report.report_records import decision, evaluation, export, plan

from calibgate.errors import ConfigError, InputError
from calibgate.report.api import render_report


def full(**overrides) -> str:
    kwargs = dict(
        decision=decision("block"),
        plan=plan(),
        candidate_eval=evaluation(shift=-0.02),
        baseline_eval=evaluation(seed=3, run_id="run-base"),
        export=export(),
        links={"workflow run": "https://github.com/o/r/actions/runs/1"},
        name="intent-model",
    )
    kwargs.update(overrides)
    return render_report(**kwargs)


def test_marker_first_then_decision():
    text = full()
    lines = text.splitlines()
    assert lines[0] == "<!-- calibgate-report:intent-model -->"
    assert lines[1].startswith("## ❌ calibgate: BLOCK") and "1 of" in lines[1]
    assert text.index("accuracy_floor") < text.index("### Signals and plan") < text.index("### Metrics")
    assert text.index("### Metrics") < text.index("### Per-class changes") < text.index("### Latency and size")


def test_pass_and_error_headings():
    assert "## ✅ calibgate: PASS" in full(decision=decision("promote"))
    error = full(decision=decision("error"))
    assert "BLOCK: the gate could not decide" in error  # ERROR never reads as a pass
    assert "🛑 ERROR" in error


def test_failed_checks_listed_before_passing_ones():
    text = full()
    flagged = text[: text.index("<details>")]
    assert (
        "❌ FAIL" in flagged and "⚠️ WARN" in flagged and "latency\\_p95" not in flagged and "latency_p95" not in flagged
    )
    assert "All 7 checks" in text


def test_metrics_deltas_carry_signs_and_intervals():
    text = full()
    metrics = text[text.index("### Metrics") : text.index("### Per-class")]
    assert re.search(r"\| `accuracy` \| 0\.860 \| 0\.840 \| -0\.020 🔻 \| \[0\.810, 0\.870\] \|", metrics)
    assert "| `ece` | 0.050 | 0.060 | +0.010 🔻 |" in metrics  # lower is better: a rise is worse
    better = full(candidate_eval=evaluation(shift=0.03))
    assert "+0.030 |" in better[better.index("### Metrics") :]


def test_mermaid_charts_present():
    text = full()
    assert text.count("```mermaid\nxychart-beta") == 2
    assert 'x-axis "labeled examples" ["50", "100", "200", "400"]' in text
    assert "line [0.55, 0.66, 0.74, 0.79]" in text
    assert "bar [" in text


def test_suspects_collapsible_and_escaped():
    text = full()
    start = text.index("<details>\n<summary>🔎 Suspect labels: 3")
    block = text[start : text.index("</details>", start)]
    assert "&lt;b&gt;" in block and "<b>" not in block  # no raw HTML from data
    assert "&#64;octocat" in block and "@octocat" not in block  # no mentions
    assert "\\[x\\](http://e)" in block  # no links
    assert "card 0 \\| please" in block  # pipes cannot break the table


def test_links_and_no_baseline():
    text = full(baseline_eval=None)
    assert "[workflow run](<https://github.com/o/r/actions/runs/1>)" in text
    assert "### Weakest classes (no baseline to compare)" in text
    assert "bar [" not in text


def test_minimal_report_only_decision():
    text = render_report(decision=decision("promote").model_dump())
    assert text.startswith("<!-- calibgate-report:model -->\n## ✅")
    assert "### Metrics" not in text


def test_huge_report_stays_under_the_limit_and_says_what_was_cut():
    big_plan = plan(n_suspects=2000, n_classes=77)
    text = full(
        decision=decision("block", n_class_checks=77),
        plan=big_plan,
        candidate_eval=evaluation(77, shift=-0.05),
        baseline_eval=evaluation(77, seed=5),
    )
    assert len(text) <= 65000
    assert text.startswith("<!-- calibgate-report:intent-model -->")
    assert "Shortened to fit GitHub's 65,535-character comment limit" in text
    assert "suspect labels:" in text and "of 2,000 shown" in text
    # higher-priority sections survive whole
    for heading in ("### Signals and plan", "### Metrics", "### Per-class changes", "### Latency and size"):
        assert heading in text
    assert "All 77 classes" in text
    assert text.count("<details") == text.count("</details>")
    assert text.count("```") % 2 == 0


def test_tiny_budget_drops_low_priority_sections_first():
    text = full(plan=plan(n_suspects=200), max_chars=6000)
    assert len(text) <= 6000
    assert "accuracy_floor" in text
    assert "suspect labels omitted" in text or "suspect labels:" in text


def test_without_trimming_no_note():
    assert "Shortened" not in full()


def test_bad_inputs():
    with pytest.raises(InputError, match="decision: not a GateDecision record: 'decision'"):
        render_report(
            decision={
                "decision": "maybe",
                "candidate": "x",
                "policy": "p",
                "policy_sha256": "s",
                "checks": [],
                "summary": "",
            }
        )
    with pytest.raises(ConfigError, match="max_chars"):
        render_report(decision=decision(), max_chars=70000)
    with pytest.raises(ConfigError, match="marker"):
        render_report(decision=decision(), name="bad name -->")


def test_report_module_imports_no_torch():
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['transformers'] = None\n"
        "import calibgate.report.api, calibgate.pipeline.ci, calibgate.cli.report, calibgate.github\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_last_resort_cut_keeps_blocks_closed():
    from calibgate.report.api import _assemble
    from calibgate.report.sections import Section, Variant

    huge = Section(
        "decision", "check list", (Variant("<details>\n<summary>x</summary>\n\n```\n" + "y\n" * 5000),), droppable=False
    )
    text = _assemble("<!-- calibgate-report:m -->", [huge], 3000)
    assert len(text) <= 3000 and text.count("```") % 2 == 0 and text.count("<details") == text.count("</details>")
    assert "cut here" in text


def test_long_summary_is_cut():
    long = decision("block").model_copy(update={"summary": "z" * 200_000})
    assert len(render_report(decision=long)) < 5000


def test_the_plans_chosen_lora_candidate_is_marked():
    """The plan keys candidates as ``lora/r8``; the report once formatted them as ``lora/8`` and marked none."""
    text = full()
    rows = [line for line in text.splitlines() if line.startswith("|") and "★" in line]
    assert len(rows) == 1 and "lora" in rows[0] and "8" in rows[0]


@pytest.mark.parametrize("url", ["https://a.example/x\n\n<!--", "https://a.example>)<!--\n@everyone", "https://a.example/`x` \"y\""])
def test_a_link_cannot_end_early_or_open_a_comment(url):
    """A newline in a URL ended the link and '<!--' after it hid the rest of the comment; only '>' and ' ' were
    encoded. The drift issue's links were not encoded at all."""
    from calibgate.drift.render import drift_body

    text = full(links={"run @x": url})
    (line,) = [row for row in text.splitlines() if "a.example" in row]
    assert "<!--" not in line and "@everyone" not in line and "\n" not in line
    assert re.search(r"\[run &#64;x\]\(<https://a\.example[^<>\s`\"]*>\)", line), line
    body = drift_body(name="m", summary="s", domain_lines=[], output_lines=[], production="p.jsonl", n_production=1,
                      reference="r", n_reference=1, suggestions=[], links={"x": url}, next_step="n")
    assert "a.example" in body and "<!--" not in body and "@everyone" not in body
