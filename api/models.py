"""Service tokens of the exchange's systems and the append-only record of their calls."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Scope(models.TextChoices):
    """What a service token may do; a token carries a list of these."""

    RESTRICTIONS_READ = "restrictions:read", _("Read account restrictions")


def validate_scopes(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(scope, str) for scope in value):
        raise ValidationError(_("Scopes must be a list of scope names."))
    unknown = sorted(set(value) - set(Scope.values))
    if unknown:
        raise ValidationError(
            _("Unknown scope: %(scopes)s."), params={"scopes": ", ".join(unknown)}
        )


class ServiceToken(models.Model):
    """A credential of one calling system; the token itself is shown once and never stored.

    `token_hash` is a keyed hash (accounts.hashing, purpose SERVICE_TOKEN): a copy of the database
    alone neither reveals a token nor lets anyone test a guessed one. Tokens are revoked,
    never deleted, so every recorded call keeps pointing at the token that made it.
    """

    name = models.CharField(
        _("name"),
        max_length=64,
        unique=True,
        validators=[
            RegexValidator(
                r"\A[A-Za-z0-9][A-Za-z0-9._-]*\Z",
                _("Use letters, digits, dots, hyphens and underscores."),
            )
        ],
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(_("scopes"), default=list, blank=True, validators=[validate_scopes])
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("service token")
        verbose_name_plural = _("service tokens")
        constraints = [
            models.CheckConstraint(
                condition=Q(scopes__contained_by=list(Scope.values)),
                name="api_servicetoken_known_scopes",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


class ServiceCall(models.Model):
    """One call to the service API, refusals included; append-only (a PostgreSQL trigger).

    `account_id` is the id that was asked for, as a plain number (null when the path held
    no valid id), so erasing an account keeps its record. No token is ever stored here.
    """

    token = models.ForeignKey(
        ServiceToken,
        verbose_name=_("service token"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="calls",
    )
    account_id = models.BigIntegerField(_("account id"), null=True, blank=True, db_index=True)
    status_code = models.PositiveSmallIntegerField(_("status code"))
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("service call")
        verbose_name_plural = _("service calls")

    def __str__(self) -> str:
        return f"{self.status_code} account {self.account_id} ({self.created_at:%Y-%m-%d %H:%M:%S})"
