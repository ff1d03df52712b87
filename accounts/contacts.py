"""Phone numbers and email addresses: parsing to E.164 and masking for display."""

from __future__ import annotations

import difflib

import phonenumbers
from django.conf import settings


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
    code = phonenumbers.parse(e164).country_code
    if code is None:
        raise InvalidPhoneNumber(e164)
    return code


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
