"""The curious agent.

An agent signed in to the admin (password and authenticator) who holds one case and wants
the references and contacts of the others: cases in the queue, a colleague's case, closed
cases and the requests that joined them. They know the admin's URL patterns and walk every
page of every registered model with every id, the autocomplete JSON for every relation,
the search, the object tools and the support pages. Every page either shows nothing of a
case they do not hold, or answers exactly as it does for an id that does not exist.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from accounts.contacts import mask_email, mask_phone
from accounts.models import User
from support.models import (
    CaseApproval,
    CaseEvent,
    CaseEvidence,
    CaseProof,
    CaseStatus,
    EmailChange,
    RecoveryCase,
)
from support.services.cases import case_event_add, case_open
from support.services.queue import case_claim_next
from tests.factories import UserFactory
from tests.support.conftest import admin_client, png_upload

pytestmark = pytest.mark.django_db

CSRF = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]+"')
MISSING_ID = 987654


def _case(*, email: str, phone: str = "", files=None, user=None) -> RecoveryCase:
    return case_open(contact_email=email, contact_phone=phone, matched_user=user, files=files).case


@pytest.fixture
def world(agent, other_agent, supervisor):
    """The agent holds one case; four others are in the queue, with a colleague, closed,
    and joined to the colleague's case, each with events, proofs, files and approvals."""
    own = _case(email="own.requester@example.org")
    RecoveryCase.objects.filter(pk=own.pk).update(status=CaseStatus.WAITING)
    claimed = case_claim_next(agent=agent)
    assert claimed is not None and claimed.pk == own.pk

    colleague_account = UserFactory.create(
        email="colleague.customer@web.de", phone="+4915177700011"
    )
    colleagues = _case(
        email="colleague.customer@web.de",
        phone="+4915177700011",
        files=[png_upload()],
        user=colleague_account,
    )
    RecoveryCase.objects.filter(pk=colleagues.pk).update(status=CaseStatus.WAITING)
    claimed = case_claim_next(agent=other_agent)
    assert claimed is not None and claimed.pk == colleagues.pk
    joined = _case(email="joined.stranger@gmx.de", phone="+4917688800022", user=colleague_account)
    assert joined.merged_into_id == colleagues.pk
    proof = CaseProof.objects.create(
        case=colleagues, kind=CaseProof.Kind.DOCUMENT, by_customer=False, attested_by=other_agent
    )
    CaseApproval.objects.create(
        case=colleagues, action=CaseApproval.Action.DOCUMENT, proof=proof, requested_by=other_agent
    )
    EmailChange.objects.create(
        case=colleagues,
        requester=colleagues,
        user=colleague_account,
        new_email="colleague.new@example.org",
        requested_by=other_agent,
    )
    case_event_add(case=colleagues, type=CaseEvent.Type.AGENT_MESSAGE, actor=other_agent)

    waiting = _case(email="waiting.customer@yahoo.com", phone="+4915166600033")
    RecoveryCase.objects.filter(pk=waiting.pk).update(status=CaseStatus.WAITING)
    closed = _case(email="closed.customer@outlook.com", files=[png_upload()])
    RecoveryCase.objects.filter(pk=closed.pk).update(status=CaseStatus.RESOLVED)

    others = [colleagues, joined, waiting, closed]
    secrets = {case.reference for case in others}
    for case in others:
        secrets.add(mask_email(case.contact_email))
        if case.contact_phone:
            secrets.add(mask_phone(case.contact_phone))
    return own, others, secrets


def admin_urls(own: RecoveryCase, others: list[RecoveryCase]) -> list[str]:
    """Every URL of the admin an agent can type: each registered model's list, search, add,
    and per id its change, history and delete pages; the object tools and support pages of
    every case; the autocomplete of every relation; the "view on site" shortcut."""
    urls = []
    cases = [own, *others]
    for model in admin.site._registry:
        ids = [*model._default_manager.values_list("pk", flat=True), MISSING_ID]
        info = (model._meta.app_label, model._meta.model_name)
        changelist = reverse("admin:{}_{}_changelist".format(*info))
        urls += [
            changelist,
            changelist + "?" + urlencode({"q": "RC-"}),
            changelist + "?" + urlencode({"q": others[0].reference}),
            changelist + "?_to_field=id&_popup=1",
            reverse("admin:{}_{}_add".format(*info)),
        ]
        for pk in ids:
            for view in ("change", "history", "delete"):
                urls.append(reverse(f"admin:{info[0]}_{info[1]}_{view}", args=[pk]))
        content_type = ContentType.objects.get_for_model(model)
        for pk in ids:
            urls.append(f"/admin/r/{content_type.pk}/{pk}/")
        for field in model._meta.get_fields():
            remote = getattr(field, "related_model", None)
            if remote is None or remote not in admin.site._registry or field.auto_created:
                continue
            for term in ("", "RC", others[0].reference):
                urls.append(
                    "/admin/autocomplete/?"
                    + urlencode(
                        {
                            "app_label": info[0],
                            "model_name": info[1],
                            "field_name": field.name,
                            "term": term,
                        }
                    )
                )
    for case_id in [c.pk for c in cases] + [MISSING_ID]:
        urls.append(reverse("admin:support_case_work", args=[case_id]))
        for evidence_id in [*CaseEvidence.objects.values_list("pk", flat=True), MISSING_ID]:
            urls.append(reverse("admin:support_evidence", args=[case_id, evidence_id]))
    for name in ("support_queue", "support_approvals", "support_dashboard", "index"):
        urls.append(reverse(f"admin:{name}"))
    for user_id in [*User.objects.values_list("pk", flat=True), MISSING_ID]:
        urls.append(reverse("admin:accounts_user_lift_hold", args=[user_id]))
    return urls


def seen(response) -> str:
    """What a response shows: its body (a file's bytes included) and where it redirects."""
    if getattr(response, "streaming", False):
        body = b"".join(response.streaming_content)
    else:
        body = response.content
    return body.decode(errors="replace") + " " + response.get("Location", "")


def comparable(response) -> tuple[list[int], int, bytes]:
    """Where a request ends up: the statuses of its redirects, the final status and page."""
    body = response.content if not getattr(response, "streaming", False) else b"<file>"
    body = CSRF.sub(b"", body)
    hops = [status for _url, status in getattr(response, "redirect_chain", [])]
    return hops, response.status_code, body


def test_an_agent_learns_nothing_of_cases_they_do_not_hold_from_any_admin_page(agent, world):
    """Walk every admin URL as the agent: no reference or masked contact of another case
    appears in any body, file or redirect, and no page answers 500."""
    own, others, secrets = world
    client = admin_client(agent)
    walked = 0
    for url in admin_urls(own, others):
        response = client.get(url, follow=False)
        assert response.status_code < 500, url
        shown = seen(response)
        for secret in secrets:
            assert secret not in shown, (url, secret)
        walked += 1
    assert walked > 300


def test_an_agent_gets_the_same_answer_for_another_case_as_for_a_missing_one(agent, world):
    """For every per-object admin URL, another case's id answers exactly as an id that does
    not exist (status, redirect and page), so ids tell the agent nothing either."""
    _own, others, _secrets = world
    client = admin_client(agent)
    compared = 0
    for view in ("change", "history", "delete"):
        for other in others:
            answer = client.get(
                reverse(f"admin:support_recoverycase_{view}", args=[other.pk]), follow=True
            )
            missing = client.get(
                reverse(f"admin:support_recoverycase_{view}", args=[MISSING_ID]), follow=True
            )
            assert comparable(answer) == comparable(missing), (view, other.status)
            compared += 1
    for other in others:
        for name, args in (
            ("support_case_work", [other.pk]),
            ("support_evidence", [other.pk, MISSING_ID]),
        ):
            answer = client.get(reverse(f"admin:{name}", args=args))
            missing = client.get(reverse(f"admin:{name}", args=[MISSING_ID, *args[1:]]))
            assert comparable(answer) == comparable(missing), (name, other.status)
            compared += 1
    assert compared >= 20


def test_a_supervisor_walking_the_same_pages_does_see_the_cases(supervisor, world):
    """The walk can see a leak: a supervisor, who may open every case, finds each other
    case's reference on some page."""
    own, others, _secrets = world
    client = admin_client(supervisor)
    shown = " ".join(seen(client.get(url)) for url in admin_urls(own, others))
    for other in others:
        assert other.reference in shown
