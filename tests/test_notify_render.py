"""Rendering (pure): text and HTML bodies, escaping, highlights, truncation, payload."""

from __future__ import annotations

import json
from typing import Any

import pytest

from newswatch.model import Alert, DeliveryMode, Route
from newswatch.notify.render import (
    ELLIPSIS,
    HEADLINE_MAX,
    SUMMARY_MAX,
    alert_payload,
    delivery_key,
    highlight_segments,
    one_line,
    render_alert,
    safe_href,
    truncate,
)
from newswatch.notify.route import routes_for
from notify_samples import SNIPPET, T0, TITLE, alert, explanation, match


def with_snippet(snippet: str, highlights: tuple[tuple[int, int], ...], **changes: Any) -> Alert:
    base = alert(**changes)
    return Alert(
        outbox_id=base.outbox_id,
        rule=base.rule,
        channel=base.channel,
        article=base.article,
        explanation=explanation(snippet, highlights),
        matched_at=base.matched_at,
    )


# --------------------------------------------------------------------------- truncate


@pytest.mark.parametrize(
    ("text", "n", "expected"),
    [
        ("short", 10, "short"),
        ("exactly ten", 11, "exactly ten"),
        ("the quick brown fox jumps", 16, "the quick brown…"),
        ("the quick brown fox jumps", 15, "the quick…"),  # "brown" would not fit with "…"
        ("one, two, three", 10, "one, two…"),  # trailing comma dropped
        ("abcdefghijklmnop", 8, "abcdefg…"),  # no space: hard cut
        ("러시아와 북한이 군사 협력을 강화했다", 12, "러시아와 북한이 군사…"),
        ("俄罗斯总统普京抵达朝鲜进行国事访问", 8, "俄罗斯总统普京…"),
        ("abc", 1, "…"),
        ("abc", 0, ""),
    ],
)
def test_truncate(text: str, n: int, expected: str) -> None:
    assert truncate(text, n) == expected


def test_truncate_never_exceeds_budget_nor_splits_a_combining_mark() -> None:
    text = "cafe\u0301 " * 50  # "café" with a combining acute accent
    for n in range(1, 60):
        cut = truncate(text, n)
        assert len(cut) <= n
        assert not cut.startswith("\u0301")
        assert "e…" not in cut  # never "e" cut from its accent


def test_truncate_keeps_a_far_word_boundary_from_eating_the_text() -> None:
    # The only space is at the start: a hard cut keeps more than half the budget.
    text = "a " + "x" * 100
    assert truncate(text, 20) == "a " + "x" * 17 + ELLIPSIS


# --------------------------------------------------------------------------- highlights


def test_highlight_segments_merge_clamp_and_ignore_bad_spans() -> None:
    assert highlight_segments("abcdef", [(4, 99), (0, 2), (1, 3), (5, 5), (3, 1)]) == [
        ("abc", True),
        ("d", False),
        ("ef", True),
    ]
    assert highlight_segments("abc", []) == [("abc", False)]
    assert highlight_segments("", [(0, 3)]) == []


def test_html_highlights_are_marked_after_escaping() -> None:
    snippet = 'Russia & <script>alert("NK")</script> North Korea'
    start = snippet.index("North Korea")
    html = render_alert(with_snippet(snippet, ((0, 6), (start, start + 11)))).html
    assert html is not None
    assert "<script>" not in html
    assert "<mark" in html
    assert ">Russia</mark> &amp; &lt;script&gt;alert(&#34;NK&#34;)&lt;/script&gt; <mark" in html
    assert ">North Korea</mark>" in html


def test_html_never_marks_up_raw_text_even_when_a_span_cuts_a_tag() -> None:
    snippet = "a <b>bold</b> claim"
    html = render_alert(with_snippet(snippet, ((2, 5),))).html  # exactly "<b>"
    assert html is not None
    assert ">&lt;b&gt;</mark>bold&lt;/b&gt; claim" in html
    assert "<b>" not in html


def test_text_marks_highlights_with_guillemets() -> None:
    text = render_alert(alert()).text
    assert "«Russia»n President Vladimir Putin arrived in «North Korea» early" in text


def test_highlight_offsets_survive_control_characters_in_the_snippet() -> None:
    snippet = "line one\r\nRussia"
    text = render_alert(with_snippet(snippet, ((10, 16),))).text
    assert "line one «Russia»" in text


# --------------------------------------------------------------------------- message


def test_render_alert_text_has_everything_a_reader_needs() -> None:
    message = render_alert(alert())
    assert message.subject == f"russia-north-korea: {TITLE}"
    lines = message.text.splitlines()
    assert lines[0] == TITLE
    assert lines[1] == "https://www.koreaherald.com/view.php?ud=20240619000123"
    assert lines[2] == "Korea Herald National · 2024-06-18 23:30 UTC"
    assert "Rule: russia-north-korea (matched: russia, north korea)" in message.text
    assert "first in 24 years" in message.text  # summary
    assert message.text.endswith("\n")
    assert not message.text.endswith("\n\n")


def test_render_alert_html_links_only_to_web_urls() -> None:
    html = render_alert(alert()).html
    assert html is not None
    assert 'href="https://www.koreaherald.com/view.php?ud=20240619000123"' in html
    hostile = render_alert(alert(link="javascript:alert(document.cookie)")).html
    assert hostile is not None
    assert "href" not in hostile
    assert "javascript:alert(document.cookie)" not in hostile.split("<body", 1)[1].split("</h2>")[0]


def test_link_attribute_is_escaped() -> None:
    html = render_alert(alert(link='https://x.example/a?b=1&c="><script>')).html
    assert html is not None
    assert 'href="https://x.example/a?b=1&amp;c=&#34;&gt;&lt;script&gt;"' in html


def test_titles_with_line_breaks_and_bidi_controls_render_on_one_line() -> None:
    message = render_alert(alert(title="Breaking\r\nBcc: evil@x\u2028\u202eevil"))
    assert message.subject == "russia-north-korea: Breaking Bcc: evil@x evil"
    assert message.text.splitlines()[0] == "Breaking Bcc: evil@x evil"


def test_long_summary_is_cut_at_a_word_with_an_ellipsis() -> None:
    words = " ".join(f"word{i}" for i in range(400))
    message = render_alert(alert(summary=words))
    summary_line = next(line for line in message.text.splitlines() if line.startswith("word0 "))
    assert len(summary_line) <= SUMMARY_MAX
    assert summary_line.endswith(ELLIPSIS)
    assert summary_line[:-1].split()[-1].startswith("word")  # a whole word before "…"
    assert words.startswith(summary_line[:-1])


def test_long_and_empty_titles() -> None:
    long_title = "Russia " * 100
    assert len(render_alert(alert(title=long_title)).subject) <= len("russia-north-korea: ") + (
        HEADLINE_MAX
    )
    assert render_alert(alert(title="")).subject == (
        "russia-north-korea: https://www.koreaherald.com/view.php?ud=20240619000123"
    )


def test_render_is_pure() -> None:
    assert render_alert(alert()) == render_alert(alert())


def test_korean_text_survives_rendering() -> None:
    title = "러시아·북한, 군사 협력 강화"
    message = render_alert(alert(title=title, source="연합뉴스"))
    assert title in message.subject
    assert message.html is not None
    assert title in message.html
    assert "연합뉴스" in message.text


def test_one_line_and_safe_href() -> None:
    assert one_line("  a\tb\r\n\x00c\u2029 d\u202e ") == "a b c d"
    assert safe_href("https://example.com/x") == "https://example.com/x"
    assert safe_href("HTTP://example.com") == "HTTP://example.com"
    for bad in ("javascript:alert(1)", "data:text/html,x", "//example.com", "", "http://"):
        assert safe_href(bad) is None


# --------------------------------------------------------------------------- payload


def test_payload_fields_and_json() -> None:
    payload = alert_payload(alert(7))
    assert json.loads(json.dumps(payload)) == payload
    assert payload["rule"] == "russia-north-korea"
    assert payload["channel"] == "desk"
    assert payload["title"] == TITLE
    assert payload["link"].startswith("https://www.koreaherald.com/")
    assert payload["source"] == "Korea Herald National"
    assert payload["published"] == "2024-06-18T23:30:00+00:00"
    assert payload["matched_at"] == T0.isoformat()
    assert payload["matched_terms"] == ["russia", "north korea"]
    assert payload["snippet"] == SNIPPET
    assert payload["summary"].startswith("Russian President")
    assert payload["id"] == delivery_key(alert(7))
    assert payload["outbox_id"] == 7


def test_delivery_key_is_stable_across_retries_and_distinct_per_delivery() -> None:
    assert delivery_key(alert(1, attempt=1)) == delivery_key(alert(1, attempt=5))
    assert delivery_key(alert(1)) != delivery_key(alert(2))
    assert delivery_key(alert(1)) != delivery_key(alert(1, channel="other"))
    assert delivery_key(alert(1)) != delivery_key(alert(1, story_key="another"))


# --------------------------------------------------------------------------- route


def test_routes_for_names_each_target_channel_once() -> None:
    targets = {"russia-north-korea": ["desk-email", "desk-slack", "desk-email"], "thaad": ["x"]}
    assert routes_for(match(), targets) == (
        Route("russia-north-korea", "desk-email", DeliveryMode.IMMEDIATE),
        Route("russia-north-korea", "desk-slack", DeliveryMode.IMMEDIATE),
    )
    assert routes_for(match(rule="unrouted"), targets) == ()


def test_times_are_shown_on_the_configured_wall_clock() -> None:
    from zoneinfo import ZoneInfo

    sample = alert()
    assert sample.article.published is not None
    utc_text = render_alert(sample).text
    seoul = render_alert(sample, ZoneInfo("Asia/Seoul"))
    local = sample.article.published.astimezone(ZoneInfo("Asia/Seoul"))
    assert local.strftime("%Y-%m-%d %H:%M KST") in seoul.text
    assert local.strftime("%Y-%m-%d %H:%M KST") in (seoul.html or "")
    assert "UTC" in utc_text and "KST" not in utc_text
