"""No token reaches a log: gunicorn's access log and Django's request log are redacted."""

from __future__ import annotations

import datetime
import logging
import secrets

import pytest
from gunicorn.config import Config

from config.log_redaction import REDACTED, RedactingAccessLogger, redact

TOKEN_PATHS = [
    "/recover/case/{token}/",
    "/recover/not-me/{token}/",
    "/recover/reset/{token}/",
    "/recover/stop/{token}/",
    "/accounts/password/reset/key/1-{token}/",
]


@pytest.mark.parametrize("path", TOKEN_PATHS)
def test_token_segments_and_query_strings_are_redacted(path):
    """The path keeps its shape for the reader; the token and any query are gone."""
    token = secrets.token_urlsafe(32)
    line = f"GET {path.format(token=token)}?next=/x&code=123456 HTTP/1.1"
    redacted = redact(line)
    assert token not in redacted and "123456" not in redacted
    assert REDACTED in redacted and redacted.startswith("GET /")
    assert redact("GET /recover/email/ HTTP/1.1") == "GET /recover/email/ HTTP/1.1"


def test_the_gunicorn_access_log_line_holds_no_token():
    """The request line, path, query string and referer atoms are all redacted."""
    token = secrets.token_urlsafe(32)
    logger = RedactingAccessLogger(Config())
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/recover/not-me/{token}/?t={token}",
        "PATH_INFO": f"/recover/not-me/{token}/",
        "QUERY_STRING": f"t={token}",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_REFERER": f"https://desk.example/recover/case/{token}/",
        "REMOTE_ADDR": "203.0.113.7",
    }

    class Response:
        status = "200 OK"
        sent = 10
        headers: list = []

    atoms = logger.atoms(Response(), [], environ, datetime.timedelta(seconds=0.01))
    line = Config().access_log_format % atoms
    assert token not in line
    assert f"GET /recover/not-me/{REDACTED}/ HTTP/1.1" in line


@pytest.mark.django_db
def test_a_404_on_a_token_path_is_logged_without_the_token(client):
    """Django's "Not Found: <path>" warning names the page, never the token in it."""
    token = secrets.token_urlsafe(32)
    logger = logging.getLogger("django.request")
    messages: list[str] = []

    class Collect(logging.Handler):
        # The first handler to see the record: what reaches every handler after it.
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    collector = Collect()
    logger.addHandler(collector)
    try:
        client.get(f"/no-such-page/{token}/")
    finally:
        logger.removeHandler(collector)
    assert any("Not Found" in message for message in messages)
    assert not any(token in message for message in messages)
