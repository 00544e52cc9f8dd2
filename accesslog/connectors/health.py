"""What a connector tells district IT: contact with its controller, events, errors, silence."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from accesslog.models import AccessSystem, ConnectorHealth
from responder.core.announce import it_warn

ERROR_WINDOW = timedelta(hours=1)


def _health(system: AccessSystem) -> ConnectorHealth:
    health, _ = ConnectorHealth.objects.get_or_create(system=system)
    return health


def health_contact(*, system: AccessSystem) -> None:
    """The controller answered (a page, a keep-alive, a ping)."""
    ConnectorHealth.objects.update_or_create(
        system=system, defaults={"last_contact_at": timezone.now()}
    )


def health_event(*, system: AccessSystem, occurred_at: datetime) -> None:
    """A new door event came through the connector."""
    now = timezone.now()
    ConnectorHealth.objects.update_or_create(
        system=system,
        defaults={
            "last_event_at": occurred_at,
            "last_event_received_at": now,
            "last_contact_at": now,
            "silence_warned_at": None,
        },
    )


def health_error(*, system: AccessSystem, text: str) -> None:
    health = _health(system)
    now = timezone.now()
    recent = [at for at in health.errors if datetime.fromisoformat(at) > now - ERROR_WINDOW]
    health.errors = [*recent, now.isoformat()]
    health.last_error = text[:2000]
    health.save(update_fields=["errors", "last_error", "updated_at"])


def errors_last_hour(health: ConnectorHealth) -> int:
    since = timezone.now() - ERROR_WINDOW
    return sum(1 for at in health.errors if datetime.fromisoformat(at) > since)


def health_silence_warn(*, system: AccessSystem, silent_for: float) -> bool:
    """The feed said nothing for `silent_for` seconds while the controller answers pings:
    warn district IT on the socket, once per silence (a new event ends it)."""
    health = _health(system)
    if health.silence_warned_at is not None:
        return False
    health.silence_warned_at = timezone.now()
    health.save(update_fields=["silence_warned_at", "updated_at"])
    it_warn(
        kind="connector_silent",
        text=(
            f"{system.name}: no events for {silent_for:.0f} s although the controller "
            "answers; check its event stream and the connector's log."
        ),
        details={
            "system": system.slug,
            "silent_seconds": round(silent_for),
            "threshold_seconds": settings.CONNECTOR_SILENCE_SECONDS,
        },
    )
    return True
