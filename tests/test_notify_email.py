"""Email channel against a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from typing import Any

import pytest

from newswatch.config import EmailChannelConfig
from newswatch.notify.channels.email import EmailChannel
from notify_samples import TITLE, alert
from smtpserver import SmtpServer

PASSWORD = "s3cret-Passw0rd"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


def config(host: str, port: int, **smtp: Any) -> EmailChannelConfig:
    return EmailChannelConfig.model_validate(
        {
            "type": "email",
            "to": ["desk@example.org", "editor@example.org"],
            "from": "newswatch <alerts@newswatch.example>",
            "smtp": {"host": host, "port": port, "starttls": False, **smtp},
        }
    )


_OPEN: list[EmailChannel] = []


@pytest.fixture(autouse=True)
async def _close_channels() -> AsyncIterator[None]:
    """The channel keeps its SMTP connection for the round: close it after."""
    yield
    while _OPEN:
        await _OPEN.pop().aclose()


def channel_for(server: SmtpServer, **smtp: Any) -> EmailChannel:
    channel = EmailChannel("desk-email", config(server.host, server.port, **smtp))
    _OPEN.append(channel)
    return channel


def parts(message: EmailMessage) -> tuple[str, str]:
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert plain is not None
    assert html is not None
    return plain.get_content(), html.get_content()


async def test_email_arrives_as_text_and_html(smtp: SmtpServer) -> None:
    result = await channel_for(smtp).send(alert())
    assert result.ok and result.answer == f"accepted by {smtp.host}:{smtp.port}"
    [message] = smtp.messages
    assert message["Subject"] == f"[newswatch] russia-north-korea: {TITLE}"
    assert message["From"] == "newswatch <alerts@newswatch.example>"
    assert message["To"] == "desk@example.org, editor@example.org"
    assert message["Date"] is not None
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Message-ID"].endswith("@newswatch.example>")
    assert message.get_content_type() == "multipart/alternative"
    text, html = parts(message)
    assert TITLE in text
    assert "https://www.koreaherald.com/view.php?ud=20240619000123" in text
    assert "«Russia»n President" in text
    assert ">Russia</mark>n President" in html
    assert smtp.envelopes == [
        ("alerts@newswatch.example", ["desk@example.org", "editor@example.org"])
    ]


async def test_korean_title_survives(smtp: SmtpServer) -> None:
    title = "러시아·북한, 평양서 정상회담…군사 협력 강화"
    assert (await channel_for(smtp).send(alert(title=title))).ok
    [message] = smtp.messages
    assert message["Subject"] == f"[newswatch] russia-north-korea: {title}"
    raw_headers = smtp.raw[0].split(b"\r\n\r\n", 1)[0]
    assert raw_headers.isascii()  # RFC 2047 encoded words, not raw UTF-8
    text, html = parts(message)
    assert title in text
    assert title in html


async def test_crlf_in_a_title_cannot_inject_a_header(smtp: SmtpServer) -> None:
    title = "Hello\r\nBcc: evil@x.example\r\nX-Injected: yes\nContent-Type: text/html"
    assert (await channel_for(smtp).send(alert(title=title))).ok
    [message] = smtp.messages
    assert message["Bcc"] is None
    assert message["X-Injected"] is None
    assert message.get_content_type() == "multipart/alternative"
    assert message["Subject"] == (
        "[newswatch] russia-north-korea: "
        "Hello Bcc: evil@x.example X-Injected: yes Content-Type: text/html"
    )
    assert smtp.envelopes[0][1] == ["desk@example.org", "editor@example.org"]


async def test_html_escapes_feed_markup(smtp: SmtpServer) -> None:
    hostile = alert(
        title='<script>alert("t")</script> Russia',
        summary="<img src=x onerror=alert(1)> North Korea",
    )
    assert (await channel_for(smtp).send(hostile)).ok
    _, html = parts(smtp.messages[0])
    assert "<script>" not in html
    assert "<img" not in html
    assert "&lt;script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<mark" in html


async def test_message_id_is_the_same_on_a_retry(smtp: SmtpServer) -> None:
    channel = channel_for(smtp)
    await channel.send(alert(5, attempt=1))
    await channel.send(alert(5, attempt=2))
    await channel.send(alert(6))
    ids = [m["Message-ID"] for m in smtp.messages]
    assert ids[0] == ids[1]
    assert ids[0] != ids[2]


async def test_smtp_down_is_a_retry() -> None:
    down = SmtpServer()  # port reserved, nothing listening
    result = await channel_for(down).send(alert())
    assert not result.ok
    assert not result.permanent
    assert f"smtp 127.0.0.1:{down.port}" in (result.error or "")


async def test_smtp_silent_server_times_out_as_a_retry() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()  # the kernel accepts; nobody ever says hello
        host, port = listener.getsockname()
        channel = EmailChannel("desk-email", config(host, port, timeout="0.3s"))
        result = await channel.send(alert())
    assert not result.ok
    assert not result.permanent
    assert "timed out" in (result.error or "")


@pytest.mark.parametrize(
    ("rcpt_reply", "data_reply", "permanent"),
    [
        ("550 5.1.1 <desk@example.org>: Recipient address rejected", None, True),
        ("451 4.7.1 Greylisted, try again later", None, False),
        (None, "554 5.7.1 Message rejected as spam", True),
        (None, "452 4.3.1 Insufficient system storage", False),
    ],
)
async def test_smtp_replies_are_classified(
    smtp: SmtpServer, rcpt_reply: str | None, data_reply: str | None, permanent: bool
) -> None:
    smtp.rcpt_reply = rcpt_reply
    smtp.data_reply = data_reply
    result = await channel_for(smtp).send(alert())
    assert not result.ok
    assert result.permanent is permanent
    code = (rcpt_reply or data_reply or "")[:3]
    assert code in (result.error or "")
    assert smtp.messages == []


async def test_login_and_a_rejected_password_is_permanent_and_never_shown() -> None:
    with SmtpServer(credentials={"newswatch": PASSWORD}) as smtp:
        good = channel_for(smtp, username="newswatch", password=PASSWORD)
        assert (await good.send(alert())).ok
        assert smtp.logins == ["newswatch"]

        wrong = "Wr0ng-" + PASSWORD
        bad = channel_for(smtp, username="newswatch", password=wrong)
        result = await bad.send(alert())
    assert not result.ok
    assert result.permanent
    assert "535" in (result.error or "")
    assert wrong not in (result.error or "")
    assert len(smtp.messages) == 1


def test_describe_and_repr_mask_the_password() -> None:
    channel = EmailChannel(
        "desk-email",
        config("smtp.example.org", 587, starttls=True, username="newswatch", password=PASSWORD),
    )
    text = channel.describe()
    assert text == (
        "email newswatch <alerts@newswatch.example> -> desk@example.org, editor@example.org "
        "via smtp.example.org:587 (starttls, login newswatch)"
    )
    assert PASSWORD not in text
    assert PASSWORD not in repr(channel)


def test_classify_scrubs_a_password_a_server_echoes() -> None:
    import aiosmtplib

    channel = EmailChannel(
        "desk-email", config("smtp.example.org", 587, username="u", password=PASSWORD)
    )
    result = channel.classify(aiosmtplib.SMTPAuthenticationError(535, f"bad: {PASSWORD}"))
    assert result.permanent
    assert PASSWORD not in (result.error or "")
    assert "****" in (result.error or "")


async def test_display_names_stay_in_headers_not_in_the_envelope(smtp: SmtpServer) -> None:
    cfg = EmailChannelConfig.model_validate(
        {
            "type": "email",
            "to": ['"Desk, Seoul" <desk@example.org>'],
            "from": "alerts@newswatch.example",
            "subject_prefix": "",
            "smtp": {"host": smtp.host, "port": smtp.port, "starttls": False},
        }
    )
    assert (await EmailChannel("desk-email", cfg).send(alert())).ok
    assert smtp.envelopes == [("alerts@newswatch.example", ["desk@example.org"])]
    assert smtp.messages[0]["To"] == '"Desk, Seoul" <desk@example.org>'
    assert smtp.messages[0]["Subject"] == f"russia-north-korea: {TITLE}"


@pytest.mark.parametrize(
    ("smtp_settings", "expected"),
    [
        ({"starttls": True}, "STARTTLS extension not supported"),
        ({"username": "newswatch", "password": PASSWORD}, "AUTH extension is not supported"),
    ],
)
async def test_a_server_lacking_what_the_config_requires_is_permanent(
    smtp: SmtpServer, smtp_settings: dict[str, Any], expected: str
) -> None:
    result = await channel_for(smtp, **smtp_settings).send(alert())
    assert result.permanent
    assert expected in (result.error or "")
    assert PASSWORD not in (result.error or "")
