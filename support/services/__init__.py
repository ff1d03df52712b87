"""Services of the support app: `cases` (customer side), `queue` (claims), `actions` (agents)."""

from support.services.cases import (
    CaseOpened,
    case_customer_reply,
    case_event_add,
    case_link_issue,
    case_link_redeem,
    case_link_resend,
    case_open,
    case_proof_code_send,
    case_proof_verify,
    case_reopen_after_hint,
    case_triage,
    login_email_hint_send,
    not_me_case_open,
)

__all__ = [
    "CaseOpened",
    "case_customer_reply",
    "case_event_add",
    "case_link_issue",
    "case_link_redeem",
    "case_link_resend",
    "case_open",
    "case_proof_code_send",
    "case_proof_verify",
    "case_reopen_after_hint",
    "case_triage",
    "login_email_hint_send",
    "not_me_case_open",
]
