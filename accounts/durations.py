"""Durations in words, in the page's language: never "0 minutes"."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.timesince import timesince
from django.utils.translation import ngettext


def duration_in_words(duration: timedelta, *, depth: int = 2) -> str:
    """A duration as a person says it: seconds below a minute, else Django's units."""
    seconds = max(math.ceil(duration.total_seconds()), 0)
    if seconds < 60:
        seconds = max(seconds, 1)
        return ngettext("%(count)d second", "%(count)d seconds", seconds) % {"count": seconds}
    now = timezone.now()
    return timesince(now, now + timedelta(seconds=seconds), depth=depth)


def time_until_in_words(moment: datetime, *, depth: int = 2) -> str:
    """How long from now until `moment`, in words (at least "1 second")."""
    return duration_in_words(moment - timezone.now(), depth=depth)


def time_since_in_words(moment: datetime, *, depth: int = 1) -> str:
    """How long ago `moment` was, in words (at least "1 second")."""
    return duration_in_words(timezone.now() - moment, depth=depth)
