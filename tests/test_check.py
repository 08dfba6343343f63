"""`newswatch check`: exit codes, warnings, --strict and --json, as a user runs it."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from newswatch.cli import main

REPO = Path(__file__).resolve().parents[1]


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def check(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["check", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def check_json(*args: str) -> tuple[int, dict[str, Any]]:
    code, out, _ = check(*args, "--json")
    return code, json.loads(out)


WARNS = """
    feeds:
      - {url: "https://example.org/rss", name: Example, tags: [korea]}
    channels: {c: {type: console}}
    rules:
      - {name: either, query: 'russia or china', notify: [c]}
      - {name: silent, query: x}
    """


def test_clean_config_exits_0_without_warnings() -> None:
    code, out, err = check("-c", str(REPO / "config" / "newswatch.yaml"))
    assert code == 0
    assert out.splitlines()[0].endswith("newswatch.yaml: OK")
    assert "warning" not in err


def test_warnings_are_printed_and_exit_0_unless_strict(tmp_path: Path) -> None:
    cfg = write(tmp_path / "nw.yaml", WARNS)
    code, out, err = check("-c", str(cfg))
    assert code == 0
    assert out.splitlines()[0] == f"{cfg}: OK, 2 warning(s)"
    lines = err.splitlines()
    assert lines[0] == (
        f"  {cfg}:5: warning: rules[0].query: rule 'either' (query): lower-case 'or' is "
        "searched as a word; did you mean OR?"
    )
    assert f"  {cfg}:6: warning: rules[1].name: rule 'silent' notifies no channel" in err
    assert lines[-1] == "2 warning(s); --strict makes them fail the check"
    code, out, err = check("-c", str(cfg), "--strict")
    assert code == 1
    assert out.splitlines()[0] == f"{cfg}: 2 warning(s), failing with --strict"


def test_errors_exit_1_in_the_usual_form(tmp_path: Path) -> None:
    cfg = write(tmp_path / "nw.yaml", "timezon: UTC\npoll: {every: 10}\n")
    code, out, err = check("-c", str(cfg))
    assert code == 1
    assert out == ""
    assert err.splitlines() == [
        "newswatch: configuration has 2 problem(s):",
        f"  {cfg}:1: timezon: unknown setting 'timezon'; did you mean 'timezone'?",
        f"  {cfg}:2: poll.every: '10' has no unit; write 10s, 10m, 10h or 10d",
    ]


def test_tab_gives_a_hint_and_a_caret(tmp_path: Path) -> None:
    cfg = tmp_path / "nw.yaml"
    cfg.write_text("poll:\n\tevery: 10m\n", encoding="utf-8")
    code, _, err = check("-c", str(cfg))
    assert code == 1
    assert f"{cfg}:2: invalid YAML:" in err
    assert "YAML does not allow tabs for indentation" in err
    assert err.splitlines()[-1].strip() == "^"


@pytest.mark.timeout(10)  # expanded, the bomb would take minutes and gigabytes
def test_alias_bomb_is_a_clear_error(tmp_path: Path) -> None:
    lines = ["a0: &a0 [" + ", ".join(["lol"] * 10) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    cfg = tmp_path / "bomb.yaml"
    cfg.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, _, err = check("-c", str(cfg))
    assert code == 1
    assert f"{cfg}:4: aliases expand to more than 10,000 values" in err


def test_json_on_success_with_warnings(tmp_path: Path) -> None:
    cfg = write(tmp_path / "nw.yaml", WARNS)
    code, doc = check_json("-c", str(cfg))
    assert code == 0
    assert set(doc) == {"ok", "errors", "warnings", "summary"}
    assert doc["ok"] is True and doc["errors"] == []
    assert [w["path"] for w in doc["warnings"]] == ["rules[0].query", "rules[1].name"]
    assert doc["warnings"][0] == {
        "file": str(cfg),
        "line": 5,
        "path": "rules[0].query",
        "message": doc["warnings"][0]["message"],
    }
    assert doc["summary"]["feeds"] == 1 and doc["summary"]["rules"] == 2
    assert doc["summary"]["channels"] == {"c": "console (text) -> stdout"}
    code, doc = check_json("-c", str(cfg), "--strict")
    assert code == 1 and doc["ok"] is False


def test_json_on_errors(tmp_path: Path) -> None:
    cfg = write(tmp_path / "nw.yaml", "rules:\n  - {name: r, query: 'a AND', notify: [c]}\n")
    code, doc = check_json("-c", str(cfg))
    assert code == 1
    assert doc["ok"] is False and doc["warnings"] == []
    assert [(e["line"], e["path"]) for e in doc["errors"]] == [
        (2, "rules[0].notify[0]"),
        (2, "rules[0].query"),
    ]
    assert all(e["file"] == str(cfg) for e in doc["errors"])


def test_json_never_holds_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK", "https://hooks.example.org/services/T000/SECRET-TOKEN")
    monkeypatch.setenv("PW", "hunter2-password")
    cfg = write(
        tmp_path / "nw.yaml",
        """
        state: postgresql://nw:dbpass-secret@db.example.org/nw
        feeds: [{url: "https://feeduser:feedpass@example.org/rss?token=feedtoken"}]
        channels:
          hook: {type: webhook, url: '${HOOK}', headers: {Authorization: 'Bearer ${PW}'}}
          mail: {type: email, to: a@b.org, smtp: {host: h, username: u, password: '${PW}'}}
        rules: [{name: r, query: x, notify: [hook, mail]}]
        """,
    )
    code, out, err = check("-c", str(cfg), "--json")
    assert code == 0, err
    for secret in ("SECRET-TOKEN", "T000", "hunter2", "dbpass-secret", "feedpass", "feedtoken"):
        assert secret not in out + err
    assert "hooks.example.org" in out  # described, masked


def test_missing_local_feed_file_is_a_warning(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "nw.yaml",
        """
        feeds: [{path: feeds/later.xml, name: later}]
        channels: {c: {type: console}}
        rules: [{name: r, query: x, notify: [c]}]
        """,
    )
    code, _, err = check("-c", str(cfg))
    assert code == 0
    assert f"{cfg}:1: warning: feeds[0].path: feed 'later': " in err
    assert "does not exist (yet); polls will fail" in err
    code, doc = check_json("-c", str(cfg), "--strict")
    assert code == 1 and [w["path"] for w in doc["warnings"]] == ["feeds[0].path"]
