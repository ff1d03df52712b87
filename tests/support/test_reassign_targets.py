"""A case is reassigned only to staff who can sign in with their second factor and hold no
case: the form offers no one else and the service refuses anyone else."""

from __future__ import annotations

import pytest
from django import forms
from django_otp.plugins.otp_totp.models import TOTPDevice

from support.forms import ReassignForm
from support.models import CaseStatus
from support.roles import AGENTS_GROUP
from support.services.queue import CaseActionError, case_claim_next, case_reassign
from tests.factories import UserFactory
from tests.support.conftest import role_group, staff_member, waiting_case

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent_without_otp():
    """An agent in the role whose authenticator was never confirmed: the admin's sign-in
    would refuse them."""
    user = UserFactory(email="agent.nootp@desk.example", is_staff=True, phone=None)
    user.groups.add(role_group(AGENTS_GROUP))
    TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    return user


def test_the_form_offers_only_agents_who_sign_in_with_otp_and_hold_no_case(
    supervisor, agent, other_agent, agent_without_otp
):
    """The choices leave out an agent without a confirmed authenticator and one who holds a
    case; posting either is refused as not on the list."""
    waiting_case()
    assert case_claim_next(agent=other_agent) is not None

    choices = ReassignForm().fields["assignee"]
    assert isinstance(choices, forms.ModelChoiceField) and choices.queryset is not None
    offered = set(choices.queryset)

    assert agent in offered and supervisor in offered
    assert agent_without_otp not in offered and other_agent not in offered
    for refused in (agent_without_otp, other_agent):
        form = ReassignForm({"assignee": str(refused.pk)})
        assert not form.is_valid()
        assert "Pick an agent from the list." in str(form.errors)


def test_the_service_refuses_staff_who_cannot_sign_in_or_hold_a_case(
    supervisor, agent, other_agent, agent_without_otp
):
    """Called directly, the service says why and leaves the case where it was."""
    case = waiting_case()
    second = waiting_case()
    assert case_claim_next(agent=agent) == case
    assert case_claim_next(agent=other_agent) == second
    inactive = staff_member("agent.gone@desk.example", AGENTS_GROUP)
    inactive.is_active = False
    inactive.save(update_fields=["is_active"])

    for assignee in (agent_without_otp, inactive):
        with pytest.raises(CaseActionError, match="authenticator"):
            case_reassign(case_id=case.pk, agent=supervisor, assignee=assignee)
    with pytest.raises(CaseActionError, match="already holds a case"):
        case_reassign(case_id=case.pk, agent=supervisor, assignee=other_agent)

    case.refresh_from_db()
    assert (case.status, case.claimed_by) == (CaseStatus.CLAIMED, agent)
