"""Known against unknown: alternate the two requests of a public form and compare medians.

SPEC §7: every public form takes the same time whichever the answer. One sample is one
known and one unknown request back to back, so noise on a shared machine hits both alike;
the medians of 50 such samples must lie within 20% of each other.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.test import Client

if TYPE_CHECKING:
    from tests.factories import ClientResponse

SAMPLES = 50
TOLERANCE = 0.2
# Password hashing dominates sign-up and sign-in: it must be the production hasher's cost.
PRODUCTION_HASHERS = ["django.contrib.auth.hashers.PBKDF2PasswordHasher"]

Request = Callable[[int], "ClientResponse"]
FormData = Callable[[int], dict[str, str]]


@dataclass(frozen=True)
class TimingComparison:
    known: list[float]
    unknown: list[float]

    @property
    def ratio(self) -> float:
        return statistics.median(self.known) / statistics.median(self.unknown)

    def __str__(self) -> str:
        return (
            f"known/unknown median ratio {self.ratio:.2f} "
            f"({statistics.median(self.known) * 1000:.1f} ms / "
            f"{statistics.median(self.unknown) * 1000:.1f} ms, {len(self.known)} samples each)"
        )


def _timed(request: Request, number: int, status: int) -> float:
    start = time.perf_counter()
    response = request(number)
    elapsed = time.perf_counter() - start
    assert response.status_code == status, (response.status_code, response.content[:500])
    return elapsed


def compare_timing(
    *, known: Request, unknown: Request, status: int, samples: int = SAMPLES
) -> TimingComparison:
    """Time `samples` alternating pairs; each request gets its sample number, so it can use
    fresh values where the form needs them, and must answer `status`. A first pair warms
    caches and is not counted."""
    _timed(known, samples, status), _timed(unknown, samples, status)
    comparison = TimingComparison(known=[], unknown=[])
    for number in range(samples):
        # Which goes first alternates too: the second of a pair may find warmer caches.
        first, second = (known, unknown) if number % 2 == 0 else (unknown, known)
        times = (_timed(first, number, status), _timed(second, number, status))
        known_time, unknown_time = times if number % 2 == 0 else times[::-1]
        comparison.known.append(known_time)
        comparison.unknown.append(unknown_time)
    return comparison


def assert_same_time(comparison: TimingComparison) -> None:
    print(comparison)  # the measured figure, shown in the run's report
    assert 1 - TOLERANCE <= comparison.ratio <= 1 + TOLERANCE, str(comparison)


def lift_rate_limits(settings, *names: str) -> None:
    """Turn the named rate limits off: one timing run sends more requests than they allow."""
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, **dict.fromkeys(names, False)}


def assert_posts_take_the_same_time(
    path: str, *, known: FormData, unknown: FormData, status: int, samples: int = SAMPLES
) -> None:
    """POST the form data for a known and for an unknown identifier to `path` alternately,
    from one browser; each builds its data from the sample number. The medians must agree."""
    client = Client()
    assert_same_time(
        compare_timing(
            known=lambda number: client.post(path, known(number)),
            unknown=lambda number: client.post(path, unknown(number)),
            status=status,
            samples=samples,
        )
    )
