"""Sending text messages through the backend named by the SMS_BACKEND setting."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class SmsMessage:
    to: str
    body: str
    reference: str


def get_sms_backend():
    return import_string(settings.SMS_BACKEND)()
