"""factory_boy factories and helpers for users and their authenticators."""

from __future__ import annotations

import time

import factory
from allauth.account.models import EmailAddress
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    phone = factory.Sequence(lambda n: f"+4915112{n:06d}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def verified_email(self, create, extracted, **kwargs):
        if create:
            self.save()
            EmailAddress.objects.create(user=self, email=self.email, primary=True, verified=True)


def totp_code(device: TOTPDevice, at: float | None = None) -> str:
    """The code the customer's app shows at time `at` (now by default)."""
    generator = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    generator.time = at if at is not None else time.time()
    return f"{generator.token():0{device.digits}d}"
