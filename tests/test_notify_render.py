"""Rendering (pure): text and HTML bodies, escaping, highlights, truncation,
templates (sandboxed, user overrides), packing into parts, the payload."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Any

import pytest

from newswatch.keys import digest_key, group_key
from newswatch.model import Message, Notification, NotificationKind
from newswatch.notify.payload import notification_payload
from newswatch.notify.render import RenderContext, pack, render_message, render_parts
from newswatch.notify.templates import TemplateError, Templates, escape_for
from newswatch.notify.text import (
    ELLIPSIS,
    HEADLINE_MAX,
    SUMMARY_MAX,
    highlight_segments,
    one_line,
    safe_href,
    truncate,
)
from notify_samples import SNIPPET, T0, TITLE, alert, explanation, item, many, notification


def render_alert(n: Notification, tz: tzinfo = UTC) -> Message:
    return render_message(n, RenderContext(tz=tz))


def with_snippet(
    snippet: str, highlights: tuple[tuple[int, int], ...], **changes: Any
) -> Notification:
    base = alert(**changes)
    lead = dataclasses.replace(base.items[0], explanation=explanation(snippet, highlights))
    return dataclasses.replace(base, items=(lead,))


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
    assert ">Russia</mark> &amp; &lt;script&gt;alert(&quot;NK&quot;)&lt;/script&gt; <mark" in html
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
    # Characters that could end the attribute or the link are percent-encoded.
    assert 'href="https://x.example/a?b=1&amp;c=%22%3E%3Cscript%3E"' in html


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
    payload = notification_payload(alert(7))
    assert json.loads(json.dumps(payload)) == payload
    assert payload["version"] == 1
    assert (payload["kind"], payload["channel"], payload["id"]) == ("alert", "desk", "nw-7-desk")
    assert payload["rules"] == ["russia-north-korea"]
    [entry] = payload["items"]
    assert entry["rules"] == ["russia-north-korea"]
    assert entry["title"] == TITLE
    assert entry["link"].startswith("https://www.koreaherald.com/")
    assert entry["source"] == "Korea Herald National"
    assert entry["published"] == "2024-06-18T23:30:00+00:00"
    assert entry["matched_at"] == T0.isoformat()
    assert entry["matched_terms"] == ["russia", "north korea"]
    assert entry["snippet"] == SNIPPET
    assert entry["summary"].startswith("Russian President")
    assert entry["also"] == []


def test_keys_are_stable_and_distinct() -> None:
    assert group_key("desk", [3, 1, 2]) == group_key("desk", [1, 2, 3])
    assert group_key("desk", [1]) != group_key("desk", [2])
    assert group_key("desk", [1]) != group_key("other", [1])
    assert digest_key("d", T0) != digest_key("d", T0, 1)
    assert len(group_key("desk", range(1000))) <= 64


def test_times_are_shown_on_the_configured_wall_clock() -> None:
    from zoneinfo import ZoneInfo

    sample = alert()
    published = sample.items[0].article.published
    assert published is not None
    utc_text = render_alert(sample).text
    seoul = render_alert(sample, ZoneInfo("Asia/Seoul"))
    local = published.astimezone(ZoneInfo("Asia/Seoul"))
    assert local.strftime("%Y-%m-%d %H:%M KST") in seoul.text
    assert local.strftime("%Y-%m-%d %H:%M KST") in (seoul.html or "")
    assert "UTC" in utc_text and "KST" not in utc_text


# --------------------------------------------------------------------------- kinds


def test_a_group_lists_each_story_once_with_all_its_rules_and_outlets() -> None:
    from newswatch.model import Outlet

    herald = item(1, rules=("russia-north-korea", "thaad"))
    herald = dataclasses.replace(
        herald,
        also=(
            Outlet("Korea Times", "t", "https://www.koreatimes.co.kr/1"),
            Outlet("Yonhap", "y", "https://en.yna.co.kr/1"),
        ),
    )
    other = item(2, title="Another story about Seoul", link="https://www.koreaherald.com/2")
    message = render_alert(notification(herald, other))
    assert message.subject == f"2 new stories: {TITLE}"
    assert message.text.startswith("2 new stories\n")
    assert message.text.count(TITLE) == 1
    assert "Rules: russia-north-korea, thaad" in message.text
    assert (
        "Also reported by: Korea Times <https://www.koreatimes.co.kr/1>, "
        "Yonhap <https://en.yna.co.kr/1>" in message.text
    )
    assert message.html is not None and 'href="https://en.yna.co.kr/1"' in message.html
    assert "-- newswatch, rules russia-north-korea, thaad" in message.text


def test_a_digest_has_contents_sections_per_rule_and_a_footer_naming_the_config() -> None:
    digest = many(3)
    digest = dataclasses.replace(
        digest,
        items=(
            digest.items[0],
            dataclasses.replace(digest.items[1], rules=("thaad",)),
            digest.items[2],
        ),
    )
    rc = RenderContext(config_name="config/newswatch.yaml")
    message = render_message(digest, rc)
    assert message.subject == "Digest daily 08:00: 3 stories"
    text = message.text
    assert "Contents:\n  russia-north-korea: 2\n  thaad: 1" in text
    assert text.index("== russia-north-korea ==") < text.index("== thaad ==")
    assert "-- newswatch, rules russia-north-korea, thaad in config/newswatch.yaml" in text
    assert message.html is not None and 'href="#rule-2"' in message.html


def test_a_late_digest_says_so() -> None:
    digest = many(1)
    assert digest.period is not None
    late = dataclasses.replace(digest, period=dataclasses.replace(digest.period, late=True))
    message = render_alert(late)
    assert message.subject.endswith("(late)")
    assert "sent late: newswatch was not running" in message.text


def test_a_summary_says_how_many_were_held_and_why() -> None:
    held = many(2, kind=NotificationKind.SUMMARY, reason="held back: throttled", more=3)
    message = render_alert(held)
    assert message.subject == "5 held stories (held back: throttled)"
    assert message.text.startswith("5 stories were held back (held back: throttled):")
    assert "… and 3 more" in message.text


# --------------------------------------------------------------------------- templates


HOSTILE = "<!channel> @everyone <@&1> <script>alert(1)</script> & <b>x</b>\r\nBcc: x@evil"


def test_feed_text_is_data_never_template_source() -> None:
    message = render_alert(alert(title="{{ 7*7 }} {% raw %}{{ config }}"))
    assert "{{ 7*7 }} {% raw %}{{ config }}" in message.text
    assert "49" not in message.text


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        ("text", "<!channel> & <b>"),
        ("html", "&lt;!channel&gt; &amp; &lt;b&gt;"),
        ("slack", "&lt;!channel&gt; &amp; &lt;b&gt;"),
        ("markdown", "\\<\\!channel\\> & \\<b\\>"),
    ],
)
def test_each_markup_escapes_its_own_controls(markup: str, expected: str) -> None:
    assert str(escape_for(markup, "<!channel> & <b>")) == expected


def test_markdown_escape_keeps_everyone_from_reading_as_a_mention() -> None:
    escaped = str(escape_for("markdown", "@everyone and @here"))
    assert "@everyone" not in escaped and "@here" not in escaped


def test_hostile_titles_are_inert_in_html_and_one_line_in_subjects() -> None:
    message = render_alert(alert(title=HOSTILE))
    assert "\r" not in message.subject and "\n" not in message.subject
    assert message.html is not None
    assert "<script>" not in message.html and "<b>x" not in message.html


def test_a_user_template_overrides_the_shipped_one(tmp_path: Path) -> None:
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "subject.j2").write_text("[{{ kind }}] {{ items[0].title|upper }}")
    rc = RenderContext(templates=Templates(tmp_path))
    assert render_message(alert(title="<b>x</b>"), rc).subject == "[alert] <B>X</B>"
    # Only that one: the body is still the shipped template.
    assert "Rule: russia-north-korea" in render_message(alert(), rc).text


def test_a_kind_specific_template_wins_over_the_general_one(tmp_path: Path) -> None:
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "digest.subject.j2").write_text("Morning brief: {{ count }}")
    rc = RenderContext(templates=Templates(tmp_path))
    assert render_message(many(2), rc).subject == "Morning brief: 2"
    assert render_message(alert(), rc).subject.startswith("russia-north-korea: ")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ items[0].titel }}", "has no attribute 'titel'"),  # StrictUndefined
        ("{{ ''.__class__.__mro__ }}", "unsafe"),  # the sandbox
        ("{% for x in %}", "subject.j2:1: "),  # syntax
    ],
)
def test_bad_user_templates_fail_with_file_and_line(
    tmp_path: Path, source: str, message: str
) -> None:
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "subject.j2").write_text(
        f"ok\n{source}" if "for" not in source else source
    )
    rc = RenderContext(templates=Templates(tmp_path))
    with pytest.raises(TemplateError) as caught:
        render_message(alert(), rc)
    assert message in str(caught.value)
    assert "subject.j2" in str(caught.value)


# --------------------------------------------------------------------------- parts


def test_pack_splits_at_item_boundaries_within_the_limit() -> None:
    assert pack([4, 4, 4], limit=10, overhead=2) == [range(0, 2), range(2, 3)]
    assert pack([20, 1], limit=10) == [range(0, 1), range(1, 2)]  # too big: alone
    assert pack([], limit=10) == [range(0, 0)]
    assert pack([1] * 5, limit=100, max_per_part=2) == [range(0, 2), range(2, 4), range(4, 5)]


def test_render_parts_numbers_parts_and_keeps_every_item_once() -> None:
    digest = many(40)
    parts = render_parts(digest, "text", RenderContext(), limit=1500)
    assert len(parts) > 1
    assert all(len(p) <= 1500 for p in parts)
    assert parts[0].splitlines()[1] == f"(part 1 of {len(parts)})"
    joined = "\n".join(parts)
    for i in range(1, 41):
        assert joined.count(f"Story {i}: ") == 1


def test_an_item_too_big_for_a_part_is_shown_short() -> None:
    huge = alert(summary="word " * 10_000, title="T" * 5000)
    [part] = render_parts(huge, "text", RenderContext(), limit=400)
    assert len(part) <= 400
    assert "https://www.koreaherald.com/view.php?ud=20240619000123" in part


def test_a_bad_user_template_is_a_config_error_with_file_and_line(tmp_path: Path) -> None:
    from newswatch.config import ConfigError, load_config

    (tmp_path / "tpl" / "slack").mkdir(parents=True)
    (tmp_path / "tpl" / "slack" / "item.j2").write_text("{{ item.title }}\n{{ item.nope }}\n")
    (tmp_path / "newswatch.yaml").write_text(
        "templates: tpl\n"
        "channels: {c: {type: console}}\n"
        "rules: [{name: r, query: x, notify: [c]}]\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "newswatch.yaml", env={})
    [problem] = caught.value.problems
    assert f"{tmp_path / 'tpl' / 'slack' / 'item.j2'}:2:" in problem
    assert "has no attribute 'nope'" in problem
