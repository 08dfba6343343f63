"""Which files others can read: the state database, secret files, and
configuration files with a secret written out (``newswatch.filemodes``).
Modes come from a fake ``stat``, so nothing depends on the umask."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from newswatch.config import load_config
from newswatch.filemodes import exposed, open_to_others, secret_paths, state_files


@pytest.mark.parametrize(
    ("mode", "open_"),
    [(0o600, False), (0o640, False), (0o660, False), (0o644, True), (0o602, True), (0o700, False)],
)
def test_open_to_others(mode: int, open_: bool) -> None:
    assert open_to_others(mode) is open_


def test_state_files() -> None:
    assert state_files("sqlite:////var/nw/state.db") == [
        Path("/var/nw/state.db"),
        Path("/var/nw/state.db-wal"),
        Path("/var/nw/state.db-shm"),
    ]
    assert state_files("sqlite://") == []
    assert state_files("postgresql://u:pw@db/nw") == []


def fake_stat(modes: dict[Path, int]) -> Callable[[Path], os.stat_result]:
    def stat_(path: Path) -> os.stat_result:
        if path not in modes:
            raise FileNotFoundError(path)
        return os.stat_result((0o100000 | modes[path], 0, 0, 1, 0, 0, 0, 0, 0, 0))

    return stat_


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    secret = tmp_path / "hook-url"
    secret.write_text("https://hooks.example.org/T/123\n", encoding="utf-8")
    config = tmp_path / "newswatch.yaml"
    config.write_text(
        textwrap.dedent(
            f"""
            state: sqlite:///{tmp_path}/state.db
            feeds:
              - {{url: "https://feeds.example.org/a.xml", name: plain}}
              - {{url: "https://u:pw@feeds.example.org/b.xml", name: written-out}}
              - {{url: "https://feeds.example.org/c.xml?token=${{TOKEN}}", name: from-env}}
            channels:
              hook: {{type: webhook, url: "${{file:{secret}}}"}}
              mail:
                type: email
                to: [desk@example.org]
                smtp: {{host: smtp.example.org, password: hunter2}}
            """
        ).lstrip(),
        encoding="utf-8",
    )
    return config, secret, tmp_path / "state.db"


def test_secret_paths_are_the_written_out_ones(setup: tuple[Path, Path, Path]) -> None:
    config, _, _ = setup
    loaded = load_config(config, env={"TOKEN": "t0k"})
    assert sorted(secret_paths(loaded)) == [
        ("channels", "mail", "smtp", "password"),
        ("feeds", 1, "url"),
    ]


def test_exposed_names_each_file_once_with_its_first_secret(
    setup: tuple[Path, Path, Path],
) -> None:
    config, secret, state = setup
    loaded = load_config(config, env={"TOKEN": "t0k"})
    everything_open = fake_stat({config: 0o644, secret: 0o604, state: 0o644})
    found = [str(p) for p in exposed(loaded, f"sqlite:///{state}", everything_open)]
    assert found == [
        f"{state}: warning: state: the state database is open to other users (mode 0644); "
        f"chmod 600 {state}",
        f"{secret}: warning: this secret file is open to other users (mode 0604); "
        f"chmod 600 {secret}",
        f"{config}:4: warning: feeds[1].url: a secret is written out here (and "
        "channels.mail.smtp.password), and this file is open to other users (mode 0644): "
        f"chmod 600 {config}, or write it as ${{VAR}} or ${{file:...}}",
    ]
    private = fake_stat({config: 0o600, secret: 0o640, state: 0o600})
    assert exposed(loaded, f"sqlite:///{state}", private) == []
    # Missing files (a state not created yet) are not an error.
    assert exposed(loaded, f"sqlite:///{state}", fake_stat({})) == []
    # The warnings never quote a secret.
    assert not any("hunter2" in f or "pw@" in f for f in found)
