"""The German catalogue: every message translated once, none fuzzy, placeholders kept."""

from __future__ import annotations

import re
from collections import Counter

from babel.messages.pofile import read_po

from tests.conftest import ROOT

CATALOGUE = ROOT / "locale" / "de" / "LC_MESSAGES" / "django.po"
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|\{\w*\}")


def msgids_in_file() -> list[str]:
    """The msgids as written (a catalogue reader would silently merge duplicates)."""
    ids, current, collecting = [], [], False
    for line in CATALOGUE.read_text(encoding="utf-8").splitlines():
        if line.startswith("msgid "):
            current, collecting = [line[6:].strip('"')], True
        elif collecting and line.startswith('"'):
            current.append(line.strip('"'))
        elif collecting:
            ids.append("".join(current))
            collecting = False
    return [msgid for msgid in ids if msgid]


def test_no_message_is_defined_twice():
    """A second definition of one msgid makes gettext's msgfmt refuse the whole file."""
    duplicates = [msgid for msgid, count in Counter(msgids_in_file()).items() if count > 1]
    assert duplicates == []


def test_every_message_is_translated_with_its_placeholders():
    """No empty or fuzzy translation, and each keeps the placeholders of its original."""
    with CATALOGUE.open("rb") as handle:
        catalogue = read_po(handle)
    problems = []
    for message in catalogue:
        if not message.id:
            continue
        original = message.id if isinstance(message.id, str) else message.id[0]
        assert message.string is not None, original
        translated = message.string if isinstance(message.string, str) else message.string[0]
        if not translated or message.fuzzy:
            problems.append(f"untranslated: {original!r}")
        elif sorted(PLACEHOLDER.findall(original)) != sorted(PLACEHOLDER.findall(translated)):
            problems.append(f"placeholders differ: {original!r}")
    assert problems == []


ACCOUNT_ON_HOLD = re.compile(r"account is (?:then )?on a security hold")


def test_an_account_on_a_security_hold_is_never_called_locked_in_german():
    """A hold stops security changes and withdrawals, not sign-in. German "Ihr Konto ist
    gesperrt" reads as a locked account nobody can sign in to: where the English puts the
    account on a security hold, the German says Sicherheitssperre."""
    with CATALOGUE.open("rb") as handle:
        catalogue = read_po(handle)
    locked = []
    for message in catalogue:
        original = message.id if isinstance(message.id, str) else message.id[0]
        assert message.string is not None, original
        translated = message.string if isinstance(message.string, str) else message.string[0]
        if ACCOUNT_ON_HOLD.search(original) and "Sicherheitssperre" not in translated:
            locked.append(original)
    assert locked == []
