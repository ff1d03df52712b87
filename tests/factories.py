"""factory_boy factories and helpers for users, their authenticators and staff sign-in."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import factory
from allauth.account.models import EmailAddress
from django.test import Client
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import BackupCode, User

if TYPE_CHECKING:
    # What the test client answers: a response carrying its request, context and json().
    from django.test.client import _MonkeyPatchedWSGIResponse as ClientResponse

PASSWORD = "correct-horse-battery-staple"

# The `capture` fixture: `with capture():` runs the block's after-commit work at its end.
Capture = Callable[[], AbstractContextManager[Any]]


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    phone = factory.Sequence(lambda n: f"+4915112{n:06d}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    if TYPE_CHECKING:
        # Calling a factory gives the model instance (factory_boy's metaclass `__call__` does
        # that, untyped); mypy sees only `BaseFactory.__new__`, which returns the factory.
        def __new__(cls, **kwargs: Any) -> User: ...  # type: ignore[misc]

    @factory.post_generation
    def verified_email(user: User, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            user.save()
            EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=True)


def totp_code(device: TOTPDevice, at: float | None = None) -> str:
    """The code the customer's app shows at time `at` (now by default)."""
    generator = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    generator.time = at if at is not None else time.time()
    return f"{generator.token():0{device.digits}d}"


def customer_sign_in(
    client: Client, user: User, device: TOTPDevice, *, at: float | None = None
) -> Client:
    """Sign `client` in through the customer pages: the password, then the 2FA step with
    the code `device` shows at `at` (now by default). Both steps must pass."""
    password_step = client.post(
        reverse("account_login"), {"login": user.email, "password": PASSWORD}
    )
    assert password_step.status_code == 302, password_step.content.decode()
    code_step = client.post(reverse("two_factor_verify"), {"code": totp_code(device, at)})
    assert code_step.status_code == 302, code_step.content.decode()
    return client


def admin_sign_in(client: Client, user: User, *, code: str | None = None) -> ClientResponse:
    """POST the OTP admin's sign-in form: the password and a code of the user's confirmed
    authenticator (its current one unless `code` is given)."""
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    return client.post(
        "/admin/login/?next=/admin/",
        {
            "username": user.email,
            "password": PASSWORD,
            "otp_device": device.persistent_id,
            "otp_token": code or totp_code(device),
        },
    )


def contacts_and_factors(user: User) -> tuple:
    """Everything an account thief wants to move, as stored now: login email and addresses,
    phone, password, authenticators and backup codes."""
    user = User.objects.get(pk=user.pk)
    return (
        user.email,
        user.phone,
        user.password,
        sorted(EmailAddress.objects.filter(user=user).values_list("email", "primary", "verified")),
        sorted(TOTPDevice.objects.filter(user=user, confirmed=True).values_list("pk", "key")),
        sorted(BackupCode.objects.filter(device__user=user).values_list("code_hash", flat=True)),
    )
