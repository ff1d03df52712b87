"""Phone numbers and email addresses: parsing to E.164, masking for display, and the
limits on texting a number."""

from __future__ import annotations

import difflib
import re
from typing import Any

import phonenumbers
from django.conf import settings
from django.http import HttpRequest
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

from config.ratelimits import Limit, limits_consume


class InvalidPhoneNumber(ValueError):
    """Raised for input that is not a valid phone number."""


def phone_to_e164(raw: str, *, region: str | None = None) -> str:
    """Parse a typed phone number into E.164; numbers without "+" use the default region."""
    try:
        number = phonenumbers.parse(raw, region or settings.PHONE_DEFAULT_REGION)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(raw) from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhoneNumber(raw)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_country_code(e164: str) -> int:
    """The country calling code of an E.164 number (`+4915112345612` -> 49).

    Calling codes are prefix-free, so the first one to three digits that form one are it;
    a campaign or forecast reads this for every phone on file, where a full parse per
    number would cost a hundred times more.
    """
    digits = e164[1:] if e164.startswith("+") else ""
    for length in (1, 2, 3):
        if digits[:length].isdigit() and int(digits[:length]) in COUNTRY_CODE_TO_REGION_CODE:
            return int(digits[:length])
    try:
        code = phonenumbers.parse(e164).country_code
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(e164) from exc
    if code is None:
        raise InvalidPhoneNumber(e164)
    return code


def texting_limits(phone: str) -> list[Limit]:
    """The limits one text to `phone` counts against: the number's own (that of
    /recover/email/) and its country's daily SMS budget.

    Every form that may text a number it was given counts them, whether or not the number
    has an account, so neither its answer nor its time tells which.
    """
    return [
        Limit("recover_email", key=phone),
        Limit("recover_sms_country", key=str(phone_country_code(phone))),
    ]


def texting_limits_consume(request: HttpRequest, phone: str) -> bool:
    """Count one text to `phone` (`texting_limits`); False when a limit is used up."""
    return limits_consume(request, texting_limits(phone)) is None


def mask_phone(e164: str | None) -> str:
    """`+4915112345612` -> `+49 ••• ••• 12`: the country code and the last two digits."""
    if not e164:
        return ""
    country = phone_country_code(e164)
    return f"+{country} ••• ••• {e164[-2:]}"


def _mask_part(part: str) -> str:
    if len(part) <= 2:
        return part[:1] + "***"
    return f"{part[0]}***{part[-1]}"


def mask_email(email: str | None) -> str:
    """`john@gmail.com` -> `j***n@g***.com`: enough to recognise, too little to harvest."""
    if not email or "@" not in email:
        return ""
    local, domain = email.rsplit("@", 1)
    host, _dot, tld = domain.rpartition(".")
    if not host:
        return f"{_mask_part(local)}@{domain[:1]}***"
    return f"{_mask_part(local)}@{host[:1]}***.{tld}"


# Domains most customers use; a near miss of one of these is almost always a typo.
COMMON_EMAIL_DOMAINS = (
    "gmail.com",
    "googlemail.com",
    "hotmail.com",
    "outlook.com",
    "live.com",
    "yahoo.com",
    "icloud.com",
    "me.com",
    "aol.com",
    "proton.me",
    "protonmail.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "t-online.de",
    "freenet.de",
    "yahoo.de",
    "hotmail.de",
    "outlook.de",
)


def email_domain_suggestion(email: str | None) -> str | None:
    """`john@gmial.com` -> `john@gmail.com`; None when the domain looks right or unknown.

    Works on the typed text alone, never on stored accounts, so it reveals nothing.
    """
    if not email or email.count("@") != 1:
        return None
    local, domain = email.strip().lower().split("@")
    if not local or domain in COMMON_EMAIL_DOMAINS:
        return None
    match = difflib.get_close_matches(domain, COMMON_EMAIL_DOMAINS, n=1, cutoff=0.8)
    return f"{local}@{match[0]}" if match else None


_EMAIL_IN_TEXT = re.compile(r"[^\s@<>\"',;:()\[\]{}]+@[^\s@<>\"',;:()\[\]{}]+")
# A run of digits with optional separators, long enough to be a phone number.
_PHONE_IN_TEXT = re.compile(r"(?<![\w.+-])\+?\d[\d \-./()]{5,}\d(?![\w:])")
_DATE_LIKE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{1,2}\.\d{1,2}\.\d{2,4}")


def _mask_phone_in_text(match: re.Match[str]) -> str:
    raw = match.group(0)
    digits = sum(ch.isdigit() for ch in raw)
    if digits < 7 or _DATE_LIKE.fullmatch(raw.strip()):
        return raw
    try:
        return mask_phone(phone_to_e164(raw))
    except InvalidPhoneNumber:
        return "•••" if digits >= 9 else raw


def mask_contacts_in(value: Any) -> Any:
    """`value` (text, or JSON of lists and dicts) with every email address and phone number masked.

    Staff pages that show what a customer typed (a free-text message, a submission kept as
    JSON) pass it through here; the full value stays behind the reveal with a reason.
    """
    if isinstance(value, str):
        masked = _EMAIL_IN_TEXT.sub(lambda m: mask_email(m.group(0)), value)
        return _PHONE_IN_TEXT.sub(_mask_phone_in_text, masked)
    if isinstance(value, dict):
        return {key: mask_contacts_in(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [mask_contacts_in(item) for item in value]
    return value
