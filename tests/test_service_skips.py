"""A test whose service is missing is skipped with the reason shown, and fails instead when
the run requires every service (REQUIRE_SERVICES=1, as CI sets it)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

NEEDS_REDIS = "def test_needs_redis(redis_url):\n    assert redis_url\n"
UNREACHABLE = "redis://127.0.0.1:1/0"


def run_child(tmp_path, **env: str) -> subprocess.CompletedProcess:
    """Run one test that asks for Redis in a separate pytest, with this suite's fixtures."""
    test_file = tmp_path / "test_needs_redis.py"
    test_file.write_text(NEEDS_REDIS)
    environment = {
        k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "REQUIRE_SERVICES")
    }
    environment.update(env)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-c",
            str(ROOT / "pyproject.toml"),
            "--rootdir",
            str(ROOT),
            "-p",
            "tests.conftest",
            str(test_file),
        ],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("redis_url", "reason"),
    [(UNREACHABLE, f"Redis not reachable at {UNREACHABLE}"), ("", "Redis not configured")],
    ids=["unreachable", "unset"],
)
def test_a_missing_service_skips_with_its_reason(tmp_path, redis_url, reason):
    """Without REQUIRE_SERVICES an absent or unset Redis is a skip, and -ra shows why."""
    result = run_child(tmp_path, REDIS_URL=redis_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
    assert reason in result.stdout


def test_a_missing_service_fails_the_run_when_every_service_is_required(tmp_path):
    """Under REQUIRE_SERVICES=1 the same test fails the run instead of being skipped."""
    result = run_child(tmp_path, REDIS_URL=UNREACHABLE, REQUIRE_SERVICES="1")
    assert result.returncode != 0
    assert "skipped" not in result.stdout
    assert "required service not available: Redis not" in result.stdout
