"""Canned replies and rejection reasons; written to the customer in the case's language."""

from __future__ import annotations

from django.utils import translation
from django.utils.translation import gettext_lazy as _

CANNED_REPLIES = {
    "prove_contacts": _(
        "To protect your account we need to confirm it is you. On your status page, ask for a "
        "code to the phone and to the email on your account and enter them there."
    ),
    # A new request joins this case only through the account's phone or email, so the
    # reply asks for those and for the case's reference rather than promise a join.
    "need_document": _(
        "Please send us a clear photo of an official ID that shows your name: open a new "
        "request with the phone number and the email addresses of your account, attach the "
        "photo and mention your case %(reference)s in the description."
    ),
    "more_details": _(
        "Please tell us more: when did you last sign in, and which email addresses and phone "
        "numbers might be on your account?"
    ),
}

REJECTION_REASONS = {
    "not_verified": _(
        "We could not confirm that you own this account, so we cannot change anything. You "
        "are welcome to open a new request with more evidence."
    ),
    "no_account": _(
        "We could not find an account that matches what you told us. Please check the email "
        "addresses and phone numbers you may have used and open a new request."
    ),
    "duplicate": _("This request repeats another one that we are already working on."),
}


def canned_text(texts: dict, key: str, language: str, reference: str = "") -> str:
    """The text for `key` in `language`, naming the case `reference` where it does
    (KeyError for an unknown key)."""
    with translation.override(language):
        return str(texts[key]) % {"reference": reference}
