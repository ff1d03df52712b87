"""Staff pages answer odd input in their query string with a 4xx, never a 500.

The admin hands its search box, its filters and the autocomplete's term straight to a
database query; PostgreSQL refuses a NUL character in any text it is given, so such a
value must be refused before it gets there.
"""

from __future__ import annotations

import pytest

from tests.support.conftest import admin_client, claimed_case

pytestmark = pytest.mark.django_db

NUL_QUERIES = [
    "/admin/accounts/user/?q=%00",
    "/admin/accounts/user/?q=a%00b",
    "/admin/support/recoverycase/?q=RC-%00",
    "/admin/support/recoverycase/?status__exact=%00",
    "/admin/support/caseevent/?type__exact=wait%00",
    "/admin/notifications/notification/?template_key__exact=%00",
    "/admin/accounts/securityevent/?q=1%00",
    "/admin/autocomplete/?app_label=support&model_name=caseevent&field_name=case&term=%00",
    "/admin/autocomplete/?app_label=otp_totp&model_name=totpdevice&field_name=user&term=x%00",
]
ODD_QUERIES = [
    "/admin/support/recoverycase/?p=abc",
    "/admin/support/recoverycase/?p=99999999999999999999",
    "/admin/support/recoverycase/?o=99",
    "/admin/accounts/user/?o=1.x.-",
    "/admin/accounts/securityevent/?created_at__year=abc",
    "/admin/accounts/securityevent/?created_at__year=99999",
    "/admin/support/recoverycase/?status__exact=" + "x" * 5000,
    "/admin/accounts/user/?q=" + "a" * 5000,
    "/admin/autocomplete/?app_label=nothing&model_name=none&field_name=no",
    "/admin/support/recoverycase/99999999999999999999/work/",
    "/admin/accounts/user/99999999999999999999/lift-hold/",
]


@pytest.mark.parametrize("url", NUL_QUERIES)
@pytest.mark.parametrize("role", ["agent", "supervisor"])
def test_a_nul_character_in_a_search_filter_or_term_answers_400(request, role, url):
    """An agent and a supervisor get a 400 (or the 403/redirect of a page not theirs), and
    no server error, for a NUL anywhere in the admin's query string."""
    staff = request.getfixturevalue(role)
    claimed_case(staff)
    client = admin_client(staff)
    client.raise_request_exception = False

    response = client.get(url)

    assert response.status_code in (302, 400, 403), response.status_code


@pytest.mark.parametrize("url", ODD_QUERIES)
def test_odd_pages_sorts_dates_and_ids_never_answer_500(supervisor, url):
    """Page numbers, sort columns and dates that are no such thing, over-long values and
    ids beyond any integer column: a 4xx or the page, never a server error."""
    client = admin_client(supervisor)
    client.raise_request_exception = False

    response = client.get(url)

    assert response.status_code < 500, response.status_code
