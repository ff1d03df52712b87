"""Account, recovery and staff pages are never kept by browsers or proxies."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "path",
    ["/accounts/login/", "/accounts/2fa/setup/", "/account/security/", "/recover/help/", "/admin/"],
)
def test_account_recovery_and_staff_pages_are_never_stored(client, path):
    """Pages that can show keys, codes or contact data carry Cache-Control: no-store."""
    response = client.get(path)
    assert "no-store" in response["Cache-Control"]
    assert "private" in response["Cache-Control"]
