"""Configuration: validation errors name file, line and field; secrets stay secret."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from newswatch.config import ConfigError, load_config, parse_duration, parse_size

REPO = Path(__file__).resolve().parents[1]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def problems(path: Path, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, env=env or {})
    return info.value.problems


def test_example_config_is_valid() -> None:
    loaded = load_config(REPO / "config" / "newswatch.yaml", env={})
    config = loaded.config
    assert {f.display_name for f in config.feeds} >= {"newswatch sample", "BBC World"}
    assert "russia-north-korea" in {r.name for r in config.rules}
    sample = next(f for f in config.feeds if f.path)
    assert Path(sample.path or "").is_file()  # resolved against the config folder
    assert sample.backfill == "all"
    assert config.poll.max_bytes == 10 * 1024 * 1024
    assert REPO / "config" / "rules" in loaded.files


def test_unknown_channel_in_rule_names_file_line_and_field(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "nw.yaml",
        """
        channels:
          console: {type: console}
        rules:
          - name: r1
            query: Russia
            notify:
              - console
              - slack
        """,
    )
    [msg] = problems(cfg)
    assert msg.startswith(f"{cfg}:8: rules[0].notify[1]:")
    assert "unknown channel 'slack'" in msg
    assert "console" in msg  # lists the channels that exist


def test_unset_env_var_names_variable_not_value(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "nw.yaml",
        """
        channels:
          mail:
            type: email
            to: [a@example.org]
            smtp:
              host: smtp.example.org
              password: "${SMTP_PASSWORD}"
        """,
    )
    [msg] = problems(cfg, env={"OTHER": "hunter2"})
    assert (
        msg
        == f"{cfg}:7: channels.mail.smtp.password: environment variable SMTP_PASSWORD is not set"
    )


def test_env_var_is_interpolated_and_kept_secret(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "nw.yaml",
        """
        channels:
          hook: {type: webhook, url: "${HOOK_URL}"}
          mail:
            type: email
            to: a@example.org
            smtp: {host: "${SMTP_HOST:-localhost}", password: "${file:%s}"}
        """
        % (tmp_path / "pw.txt"),
    )
    (tmp_path / "pw.txt").write_text("s3cret\n")
    config = load_config(cfg, env={"HOOK_URL": "https://hooks.example.org/T0/XYZ"}).config
    hook = config.channels["hook"]
    mail = config.channels["mail"]
    assert hook.type == "webhook"
    assert hook.url.get_secret_value() == "https://hooks.example.org/T0/XYZ"
    assert "XYZ" not in repr(config)
    assert mail.type == "email"
    assert mail.smtp.host == "localhost"
    assert mail.smtp.password is not None
    assert mail.smtp.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(config)
    assert mail.to == ("a@example.org",)


def test_bad_query_names_rule_file_line_and_caret(tmp_path: Path) -> None:
    write(
        tmp_path / "rules" / "a.yaml",
        """
        - name: fine
          query: Russia
        - name: broken
          query: 'Russia AND (North Korea'
        """,
    )
    cfg = write(tmp_path / "nw.yaml", "rules: rules/\n")
    [msg] = problems(cfg)
    first, *rest = msg.splitlines()
    assert first.startswith(f"{tmp_path / 'rules' / 'a.yaml'}:4: rules[1].query: rule 'broken'")
    caret = rest[-1]
    assert caret.strip() == "^"
    # the caret sits under a position inside the query line above it
    assert rest[-2].strip() == "Russia AND (North Korea"


def test_wrong_type_names_field_and_line(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "nw.yaml",
        """
        poll:
          every: 10m
          concurrency: many
        feeds:
          - url: https://example.org/rss
            every: soon
        """,
    )
    msgs = problems(cfg)
    assert any(m.startswith(f"{cfg}:3: poll.concurrency:") for m in msgs), msgs
    assert any(m.startswith(f"{cfg}:6: feeds[0].every:") and "not a duration" in m for m in msgs), (
        msgs
    )


def test_unknown_setting_and_channel_type(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "nw.yaml",
        """
        feeds:
          - url: https://example.org/rss
            tagz: [x]
        channels:
          pager: {type: pigeon}
        """,
    )
    msgs = problems(cfg)
    assert any(m.startswith(f"{cfg}:3: feeds[0].tagz: unknown setting") for m in msgs), msgs
    assert any(m.startswith(f"{cfg}:5: channels.pager") and "channel type" in m for m in msgs)


def test_invalid_yaml_reports_line(tmp_path: Path) -> None:
    cfg = write(tmp_path / "nw.yaml", "feeds:\n  - url: [unclosed\n")
    [msg] = problems(cfg)
    assert msg.startswith(f"{cfg}:") and "invalid YAML" in msg


def test_missing_file_is_clear(tmp_path: Path) -> None:
    [msg] = problems(tmp_path / "nope.yaml")
    assert "nope.yaml" in msg and "cannot read" in msg


def test_feed_needs_url_or_path(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "nw.yaml",
        """
        feeds:
          - name: nothing
          - url: https://example.org/rss
        """,
    )
    msgs = problems(cfg)
    assert any(m.startswith(f"{cfg}:2: feeds[0]:") and "exactly one" in m for m in msgs), msgs


def test_duplicate_feed_and_rule_names(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "nw.yaml",
        """
        feeds:
          - url: https://example.org/rss
          - url: https://example.org/rss
        rules:
          - {name: a, query: x}
          - {name: a, query: y}
        """,
    )
    msgs = problems(cfg)
    assert any(m.startswith(f"{cfg}:3: feeds[1]: duplicate feed") for m in msgs), msgs
    assert any(m.startswith(f"{cfg}:6: rules[1].name: duplicate rule name") for m in msgs), msgs


def test_inline_rules_mixed_with_files(tmp_path: Path) -> None:
    write(
        tmp_path / "more.yaml",
        "rules:\n  - {name: from-file, query: Seoul}\naliases:\n  nk: [DPRK]\n",
    )
    cfg = write(
        tmp_path / "nw.yaml",
        """
        rules:
          - {name: inline, query: Russia}
          - more.yaml
          - {name: inline2, query: '@nk'}
        """,
    )
    config = load_config(cfg, env={}).config
    assert [r.name for r in config.rules] == ["inline", "from-file", "inline2"]
    assert config.aliases == {"nk": ("DPRK",)}


def test_bad_timezone(tmp_path: Path) -> None:
    cfg = write(tmp_path / "nw.yaml", "timezone: Mars/Olympus\n")
    [msg] = problems(cfg)
    assert msg == f"{cfg}:1: timezone: unknown time zone 'Mars/Olympus'"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30s", 30), ("10m", 600), ("1.5h", 5400), ("7d", 604800), ("250ms", 0.25)],
)
def test_parse_duration(text: str, expected: float) -> None:
    assert parse_duration(text) == timedelta(seconds=expected)


@pytest.mark.parametrize("bad", ["soon", "-5m", "0s", True, None])
def test_parse_duration_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("bare", "shown"), [(10, "10"), (1.5, "1.5"), ("10", "10"), (" 45 ", "45")]
)
def test_bare_number_is_not_seconds(bare: object, shown: str) -> None:
    with pytest.raises(ValueError, match="has no unit") as info:
        parse_duration(bare)
    assert (
        str(info.value) == f"'{shown}' has no unit; write {shown}s, {shown}m, {shown}h or {shown}d"
    )


def test_bare_number_in_config_names_field_and_line(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "nw.yaml",
        """
        poll: {every: 10m, timeout: 20}
        retention: 30
        feeds:
          - url: https://example.org/rss
            every: 5
        """,
    )
    assert problems(cfg) == [
        f"{cfg}:1: poll.timeout: '20' has no unit; write 20s, 20m, 20h or 20d",
        f"{cfg}:2: retention: '30' has no unit; write 30s, 30m, 30h or 30d",
        f"{cfg}:5: feeds[0].every: '5' has no unit; write 5s, 5m, 5h or 5d",
    ]


def test_parse_size() -> None:
    assert parse_size("10MiB") == 10 * 1024 * 1024
    assert parse_size("500KB") == 500_000
    assert parse_size(2048) == 2048
    with pytest.raises(ValueError, match="size"):
        parse_size("lots")


def test_opml_expands_into_feeds_with_shared_settings(tmp_path: Path) -> None:
    (tmp_path / "subs.opml").write_text(
        """<?xml version="1.0"?>
        <opml version="2.0"><head><title>subs</title></head><body>
          <outline text="Korea">
            <outline text="Yonhap" title="Yonhap English" type="rss"
                     xmlUrl="https://en.yna.co.kr/RSS/news.xml" category="korea,wire"/>
            <outline text="BBC World" type="rss" xmlUrl="https://feeds.bbci.co.uk/news/world/rss.xml"/>
          </outline>
        </body></opml>""",
        encoding="utf-8",
    )
    cfg = write(
        tmp_path / "nw.yaml",
        """
        feeds:
          - url: https://example.org/first.xml
          - opml: subs.opml
            every: 5m
            tags: [imported]
          - {url: https://example.org/last.xml, every: nope}
        """,
    )
    [msg] = problems(cfg)
    assert msg.startswith(f"{cfg}:6: feeds[3].every:")  # indices after expansion, right line
    cfg.write_text(cfg.read_text().replace("every: nope", "every: 1h"))
    feeds = load_config(cfg, env={}).config.feeds
    assert [f.display_name for f in feeds][:3] == [
        "https://example.org/first.xml",
        "Yonhap English",
        "BBC World",
    ]
    assert feeds[1].tags == ("imported", "korea", "wire")
    assert feeds[2].every == timedelta(minutes=5)


def test_opml_errors_name_the_entry(tmp_path: Path) -> None:
    (tmp_path / "bad.opml").write_text("<opml><body><outline text='x'", encoding="utf-8")
    cfg = write(tmp_path / "nw.yaml", "feeds:\n  - opml: missing.opml\n  - opml: bad.opml\n")
    msgs = problems(cfg)
    assert msgs[0].startswith(f"{cfg}:2: feeds[0].opml: cannot read OPML file")
    assert msgs[1].startswith(f"{cfg}:3: feeds[1].opml:") and "not valid OPML" in msgs[1]


def test_retention(tmp_path: Path) -> None:
    assert load_config(write(tmp_path / "a.yaml", "{}\n"), env={}).config.retention == timedelta(
        days=90
    )
    assert load_config(write(tmp_path / "b.yaml", "retention: 30d\n"), env={}).config.retention == (
        timedelta(days=30)
    )
    assert (
        load_config(write(tmp_path / "c.yaml", "retention: none\n"), env={}).config.retention
        is None
    )
    [msg] = problems(write(tmp_path / "d.yaml", "retention: all\n"))
    assert msg.startswith(f"{tmp_path / 'd.yaml'}:1: retention:")
