"""What an anonymous POST to /recover/help/ costs in round trips to PostgreSQL and Redis.

The crisis path is this form under a flood: every statement and command per request counts.
"""

from __future__ import annotations

import pytest
import redis
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from config.ratelimits import CONSUME_SCRIPT
from support.models import CaseStatus, RecoveryCase
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def redis_commands(monkeypatch) -> list[str]:
    """The name of every command sent to Redis, in order."""
    sent: list[str] = []
    original = redis.Redis.execute_command

    def counting(self, *args, **options):
        sent.append(str(args[0]).upper())
        return original(self, *args, **options)

    monkeypatch.setattr(redis.Redis, "execute_command", counting)
    return sent


def help_post(client: Client, token: str, phone: str) -> int:
    return client.post(
        reverse("recover_help"),
        {
            "csrfmiddlewaretoken": token,
            "contact_email": "typed.wrong@example.net",
            "contact_phone": phone,
            "emails_tried": "",
            "description": "I cannot sign in any more.",
        },
        REMOTE_ADDR="203.0.113.9",
    ).status_code


def test_an_anonymous_help_request_makes_few_round_trips(
    redis_cache, redis_commands, django_capture_on_commit_callbacks
):
    account = UserFactory.create(phone="+4915123400001")
    assert account.phone is not None
    client = Client(enforce_csrf_checks=True)
    client.get(reverse("recover_help"))
    token = client.cookies["csrftoken"].value
    redis_cache._cache.get_client().script_load(CONSUME_SCRIPT)  # as after a server's first request
    redis_commands.clear()

    with (
        CaptureQueriesContext(connection) as queries,
        django_capture_on_commit_callbacks() as after_commit,
    ):
        assert help_post(client, token, account.phone) == 200

    statements = [q["sql"] for q in queries.captured_queries]
    # The request's transaction (ATOMIC_REQUESTS) is a savepoint inside the test's own;
    # opening the case adds none.
    assert [sql.split()[0] for sql in statements] == [
        "SAVEPOINT",
        "WITH",
        "WITH",
        "INSERT",
        "RELEASE",
    ], statements
    read, write, email = statements[1:4]
    # One read: the account the contact data names and its open case, locked.
    assert "accounts_user" in read and "FOR UPDATE" in read and "INSERT" not in read
    # One write: the request, its first event and its status link, by the ids it returns.
    assert [table in write for table in ("recoverycase", "caseevent", "caselink")] == [True] * 3
    assert write.count("INSERT INTO") == 3
    # The link's email, whose id comes back with the insert: it is not read back.
    assert "notifications_notification" in email and "RETURNING" in email
    # One script counts every limit (and fails closed if Redis is down): the form's per IP,
    # and, for the phone it names, the number's two and its country's SMS budget.
    assert redis_commands == ["EVALSHA"], redis_commands
    counters = redis_cache._cache.get_client().keys("*allauth:rl:*")
    assert len(counters) == 4, counters
    # After the commit, one command asks for triage: a worker takes the case in a batch.
    redis_commands.clear()
    for callback in after_commit:
        callback()
    assert redis_commands[0] == "SET", redis_commands
    assert RecoveryCase.objects.get().status == CaseStatus.RESOLVED, "triaged (eager worker)"


def test_a_flood_of_requests_asks_for_one_triage_while_one_is_on_its_way(
    redis_cache, redis_commands, django_capture_on_commit_callbacks, settings
):
    """The first request's task is on its way (the key is set): the next ones ask nothing
    of the broker."""
    from support.services.cases import TRIAGE_DUE_KEY

    client = Client(enforce_csrf_checks=True)
    client.get(reverse("recover_help"))
    token = client.cookies["csrftoken"].value
    cache.set(TRIAGE_DUE_KEY, 1, timeout=30)
    for i in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            assert help_post(client, token, f"+49152000000{i:02d}") == 200
    assert RecoveryCase.objects.filter(status=CaseStatus.NEW).count() == 3, "left for the task"
    assert "LPUSH" not in redis_commands, "no task sent"


def test_the_cache_keeps_one_redis_client_per_pool(redis_cache):
    backend = redis_cache._cache
    assert backend.get_client() is backend.get_client(write=True)
