from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from waplatform.alerts import AlertKind, check_kind


def _known_kind(value: str) -> None:
    try:
        check_kind(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


class Alert(models.Model):
    """An operator-facing problem, open until resolved. One open alert per (kind, key).

    Raised from any app through waplatform.alerts; `kind` is validated against
    AlertKind in code, so a new kind needs no migration.
    """

    Kind = AlertKind

    kind = models.CharField(max_length=32, validators=[_known_kind])
    key = models.CharField(max_length=128)
    message = models.TextField()
    opened_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "key"], condition=Q(resolved_at__isnull=True), name="one_open_alert_per_kind_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"
