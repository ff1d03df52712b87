"""The development inbox: copies of what the app sent, listed at /dev/inbox/ with DEBUG only."""

from __future__ import annotations

import pytest

from notifications.devinbox import dev_inbox_store

pytestmark = pytest.mark.django_db


def test_dev_inbox_exists_only_with_debug(client, settings, dev_inbox_dir):
    settings.DEBUG = False
    assert client.get("/dev/inbox/").status_code == 404
    settings.DEBUG = True
    dev_inbox_store(kind="sms", to="+4915100000001", subject="", body="message-one", reference="A")
    dev_inbox_store(
        kind="email", to="a@example.com", subject="Hi", body="message-two", reference="B"
    )
    html = client.get("/dev/inbox/").content.decode()
    assert html.index("message-two") < html.index("message-one"), "newest first"
