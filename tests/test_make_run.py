"""`make run`'s own settings: the embedded PostgreSQL, demo data, and an agent taking a case.

The development server runs as `make run` starts it (config.settings.local, no DATABASE_URL,
so an embedded PostgreSQL is started with its data in a directory of the test's own), and an
agent signs in to the admin in Chromium with a demo authenticator and presses "Take next".
"""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
import urllib.request

import pytest
from django_otp.oath import TOTP

from accounts.management.commands.seed_demo import DEMO_PASSWORD, demo_key
from tests.conftest import ROOT, free_port
from tests.processes import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def make_run_server(tmp_path):
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith("DJANGO_")},
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DJANGO_EMBEDDED_POSTGRES_DIR": str(tmp_path / "postgres"),
        "DJANGO_DEV_INBOX_DIR": str(tmp_path / "inbox"),
        "PORT": str(free_port()),
    }
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)

    def manage(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    manage("migrate", "--noinput")
    seeded = manage("seed_demo")
    base = f"http://127.0.0.1:{env['PORT']}"
    log = tmp_path / "runserver.log"
    with open(log, "w") as out:
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{env['PORT']}"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        assert wait_for(lambda: _answers(f"{base}/healthz"), timeout=60), log.read_text()
        yield {"base": base, "seeded": seeded}
    finally:
        os.killpg(server.pid, signal.SIGINT)
        server.wait(timeout=30)
    # The embedded server stopped with the last process that used it.
    assert not (tmp_path / "postgres" / "postmaster.pid").exists()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


def test_an_agent_takes_the_next_case_on_make_run_settings(make_run_server, chromium_browser):
    """The demo agent signs in with password and authenticator code and claims a demo case."""
    assert "agent@example.com" in make_run_server["seeded"]
    key = bytes.fromhex(demo_key("agent@example.com"))
    assert base64.b32encode(key).decode() in make_run_server["seeded"]
    context = chromium_browser.new_context(base_url=make_run_server["base"], locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15000)
    try:
        page.goto("/admin/login/?next=/admin/support/recoverycase/queue/")
        page.fill("#id_username", "agent@example.com")
        page.fill("#id_password", DEMO_PASSWORD)
        page.fill("#id_otp_token", f"{TOTP(key).token():06d}")
        page.click("#login-form input[type=submit]")
        page.wait_for_url("**/admin/support/recoverycase/queue/")
        page.click("#take-next")
        page.wait_for_url("**/admin/support/recoverycase/*/work/")
        assert re.search(r"RC-[0-9A-Z]{4}-[0-9A-Z]{4}", page.locator("h1").inner_text())
    finally:
        context.close()
