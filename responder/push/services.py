"""Web push (RFC 8030/8291/8292) to the phones of every user who may see an event.

A flood is bounded per subscription and door: the first event of a window pushes, the
rest are counted in Redis, and one summary goes out when the window ends.

An endpoint is a URL a browser hands us, so the server would post wherever a signed-in
user says: endpoints go only to the known push services over https, never to a private
or loopback address (checked at subscribe and again, on the address connected to, at
send), at most PUSH_MAX_DEVICES_PER_USER per account, and never change owner. Sends run
concurrently with short timeouts, so a push service that hangs delays no one else.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from py_vapid import Vapid02
from py_vapid.utils import b64urlencode
from pywebpush import WebPushException, webpush
from requests import RequestException
from requests_hardened import Config, HTTPSession
from requests_hardened.ip_filter import InvalidIPAddress, filter_host

from accesslog.models import Event, Severity
from accesslog.rendering import event_payloads, with_payload_relations
from cameras.models import Camera
from responder.core.announce import it_warn
from responder.core.capabilities import VIEWING
from responder.core.models import Incident, PendingPush, PushSubscription
from responder.core.redis import redis_client
from responder.incidents.services import incident_payload

logger = logging.getLogger(__name__)

# A stale alarm still matters on the way to the scene; an unanswered intercom does not.
# Keyed by the severity as stored (a plain str equal to its Severity).
TTL_SECONDS: dict[str, int] = {Severity.ALARM: 3600, Severity.WARNING: 600, Severity.NOTICE: 60}
URGENCY: dict[str, str] = {
    Severity.ALARM: "high",
    Severity.WARNING: "normal",
    Severity.NOTICE: "normal",
}
GONE = (404, 410)


class PushRefused(Exception):
    """A subscription the server will not keep; `detail` tells the PWA why."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class PushEndpointTaken(PushRefused):
    pass


@dataclass
class PushOutcome:
    sent: int = 0
    removed: int = 0
    refused: int = 0  # the endpoint's name pointed inside the network at send time
    failed: list[int] = field(default_factory=list)  # subscription ids worth a retry
    # (subscription id, door key, seconds until its summary is due)
    summaries: list[tuple[int, str, int]] = field(default_factory=list)


def push_subscription_register(
    *, user: User, endpoint: str, p256dh: str, auth: str, user_agent: str = ""
) -> PushSubscription:
    """Keeps the device's subscription for `user`. Raises PushRefused for an endpoint we
    will not post to or past the cap, PushEndpointTaken for another account's device."""
    endpoint_check(endpoint, resolve=True)
    fields = {"p256dh": p256dh, "auth": auth, "user_agent": user_agent[:300]}
    with transaction.atomic():
        # The user's row is the lock: two registrations at once cannot both pass the cap.
        get_user_model().objects.select_for_update().get(pk=user.pk)
        existing = PushSubscription.objects.filter(endpoint=endpoint).first()
        if existing is None:
            _cap_check(user)
            try:
                with transaction.atomic():
                    return PushSubscription.objects.create(user=user, endpoint=endpoint, **fields)
            except IntegrityError:  # another account registered it a moment ago
                existing = PushSubscription.objects.get(endpoint=endpoint)
        if existing.user_id != user.pk:
            # Moving it would hand the owner's alarms to whoever learned the URL.
            raise PushEndpointTaken(
                "This device receives another account's notifications. Turn them off "
                "there, or subscribe this browser again for a new endpoint."
            )
        PushSubscription.objects.filter(pk=existing.pk).update(**fields)
        existing.refresh_from_db()
        return existing


def endpoint_check(endpoint: str, *, resolve: bool) -> None:
    """Raises PushRefused unless `endpoint` is https on a known push service and (with
    `resolve`) its name does not point at a private or loopback address. A name that
    does not resolve now passes: each send resolves it again and checks that address."""
    try:
        url = urlsplit(endpoint)
    except ValueError:
        raise PushRefused("That push endpoint is not a URL.") from None
    host = (url.hostname or "").lower()
    test_service = settings.PUSH_UNSAFE_LOOPBACK_FOR_TESTS and _is_loopback(host)
    if url.scheme != "https" and not (test_service and url.scheme == "http"):
        raise PushRefused("A push endpoint must be an https URL.")
    if url.username is not None or url.password is not None:
        raise PushRefused("A push endpoint carries no user name or password.")
    if not test_service and not host_allowed(host):
        raise PushRefused(f"{host or 'That'} is not a known push service.")
    try:
        port = url.port or 443
    except ValueError:
        raise PushRefused("That push endpoint has no valid port.") from None
    if not resolve:
        return
    try:
        filter_host(host, port, allow_loopback=settings.PUSH_UNSAFE_LOOPBACK_FOR_TESTS)
    except InvalidIPAddress:
        raise PushRefused(f"{host} points at a private or loopback address.") from None
    except (RequestException, UnicodeError):
        pass


def host_allowed(host: str) -> bool:
    for allowed in settings.PUSH_ALLOWED_HOSTS:
        allowed = allowed.lower()
        if (allowed.startswith("*.") and host.endswith(allowed[1:])) or host == allowed:
            return True
    return False


def push_subscription_remove(*, user: User, endpoint: str) -> bool:
    deleted, _ = PushSubscription.objects.filter(user=user, endpoint=endpoint).delete()
    return bool(deleted)


def push_event(event: Event, *, subscription_ids: list[int] | None = None) -> PushOutcome:
    """Pushes the event to every device whose user may see it (alarms capability)."""
    outcome = PushOutcome()
    if not settings.PUSH_ENABLED or event.severity == Severity.INFO:
        return outcome
    event = with_payload_relations(Event.objects.filter(pk=event.pk)).get()
    door = door_key(event)
    due = []
    for subscription in _audience(event, subscription_ids):
        window = _window_key(subscription.id, door)
        if redis_client().set(window, 1, nx=True, ex=settings.PUSH_WINDOW_SECONDS):
            due.append(subscription)
        elif _count_suppressed(subscription.id, door, event) == 1:
            delay = max(redis_client().ttl(window), 1)
            outcome.summaries.append((subscription.id, door, delay))
    messages = _event_messages(event, {subscription.user for subscription in due})
    sends = [(subscription, messages[subscription.user_id]) for subscription in due]
    for subscription, result in _send_all(sends, severity=event.severity, topic=door):
        if result == "failed":
            redis_client().delete(_window_key(subscription.id, door))  # a retry may push again
            outcome.failed.append(subscription.id)
        _count(outcome, result)
    return outcome


def push_pending_queue(*, limit: int = 500) -> int:
    """Queues the pushes ingest could not (its broker did not answer), oldest first; those
    past their TTL are dropped, as the push service would drop them. At least once: a row
    goes only with its task queued, and the door's window absorbs a repeat."""
    from responder.push.tasks import push_event  # the tasks import this module

    now, queued = timezone.now(), 0
    with transaction.atomic():
        pending = list(
            PendingPush.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("event")
            .order_by("id")[:limit]
        )
        for row in pending:
            if now - row.event.received_at <= timedelta(seconds=TTL_SECONDS[row.event.severity]):
                push_event.delay(row.event_id)
                queued += 1
        PendingPush.objects.filter(pk__in=[row.pk for row in pending]).delete()
    return queued


def push_incident(incident: Incident, *, user_ids: list[int] | None = None) -> PushOutcome:
    """Wakes the responders' phones: the incident that gives them its campus's video."""
    outcome = PushOutcome()
    if not settings.PUSH_ENABLED:
        return outcome
    responders = Q(user__groups__in=incident.responder_groups.all())
    responders |= Q(user__assigned_incidents=incident)
    subscriptions = PushSubscription.objects.filter(responders, user__is_active=True)
    if user_ids is not None:
        subscriptions = subscriptions.filter(user__in=user_ids)
    message = {"type": "incident", "incident": incident_payload(incident)}
    message["title"] = f"Incident: {incident.title}"
    topic = f"incident-{incident.id}"
    sends = [(subscription, message) for subscription in subscriptions.distinct()]
    sent = _send_all(sends, severity=Severity.ALARM, topic=topic)
    for _, result in sent:
        _count(outcome, result)
    return outcome


def push_summary_send(*, subscription_id: int, door: str) -> bool:
    """The one push after a flood: how many more events came, and the latest."""
    pipe = redis_client().pipeline()
    pipe.hgetall(_flood_key(subscription_id, door))
    pipe.delete(_flood_key(subscription_id, door))
    flood = pipe.execute()[0]
    subscription = PushSubscription.objects.filter(pk=subscription_id).first()
    if not flood or subscription is None:
        return False
    # The summary opens a new window, so a flood that goes on yields one summary a minute.
    redis_client().set(_window_key(subscription_id, door), 1, ex=settings.PUSH_WINDOW_SECONDS)
    count = int(flood["count"])
    message = {
        "type": "summary",
        "door": int(flood["door"]) if flood["door"] else None,
        "count": count,
        "latest": int(flood["latest"]),
        "title": f"{count} more at {flood['name']}",
    }
    [(_, result)] = _send_all([(subscription, message)], severity=flood["severity"], topic=door)
    return result == "sent"


def door_key(event: Event) -> str:
    # Topic: at most 32 characters of the base64url alphabet (RFC 8030 section 5.4).
    if event.door_id:
        return f"door-{event.door_id}"
    digest = hashlib.sha256(f"{event.system_id}:{event.door_external_id}".encode())
    return f"ext-{digest.hexdigest()[:24]}"


def vapid() -> Vapid02:
    return _vapid(settings.VAPID_PRIVATE_KEY, settings.DEBUG and settings.SECRET_KEY)


@functools.cache
def _vapid(private_key: str, dev_secret: str | Literal[False]) -> Vapid02:
    if private_key:
        return Vapid02.from_string(private_key)
    if not dev_secret:
        raise ImproperlyConfigured("Set VAPID_PRIVATE_KEY.")
    # Dev only: the same key in every process and restart, so subscriptions stay valid.
    seed = hmac.new(dev_secret.encode(), b"responder-vapid", hashlib.sha256).digest()
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    return Vapid02(ec.derive_private_key(int.from_bytes(seed) % (order - 1) + 1, ec.SECP256R1()))


def vapid_public_key() -> str:
    """The applicationServerKey for PushManager.subscribe(): base64url, uncompressed point."""
    if settings.VAPID_PUBLIC_KEY:
        return settings.VAPID_PUBLIC_KEY
    point = vapid().public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64urlencode(point)


def _audience(event: Event, subscription_ids: list[int] | None) -> list[PushSubscription]:
    subscriptions = PushSubscription.objects.filter(user__is_active=True).select_related("user")
    if subscription_ids is not None:
        subscriptions = subscriptions.filter(pk__in=subscription_ids)
    allowed: dict[int, bool] = {}
    for subscription in subscriptions:
        if subscription.user_id not in allowed:
            visible = Event.objects.visible_to(subscription.user).filter(pk=event.pk)
            allowed[subscription.user_id] = visible.exists()
    return [s for s in subscriptions if allowed[s.user_id]]


def _event_messages(event: Event, users: set[User]) -> dict[int, dict]:
    """Each user's message: the door's cameras narrowed to those that user may watch."""
    [payload] = event_payloads([event])
    messages = {}
    for user in users:
        watchable = Camera.objects.visible_to(user, *VIEWING).filter(pk__in=payload["cameras"])
        visible = set(watchable.values_list("pk", flat=True))
        cameras = [camera for camera in payload["cameras"] if camera in visible]
        messages[user.pk] = _event_message(event, {**payload, "cameras": cameras})
    return messages


def _event_message(event: Event, payload: dict) -> dict:
    where = event.door.name if event.door else event.door_external_id
    message = {"type": "event", "seq": event.seq, "event": payload}
    message["title"] = f"{event.get_type_display()}: {where}"
    if event.severity == Severity.NOTICE:
        # An intercom call is answered by looking: its camera comes with it.
        message["camera"] = payload["cameras"][0] if payload["cameras"] else None
    return message


def _send_all(
    sends: list[tuple[PushSubscription, dict]], *, severity: str, topic: str
) -> list[tuple[PushSubscription, str]]:
    """Posts each message to its endpoint, all at once, so each costs at most its own
    timeout; the database work stays on this thread. Results: sent, failed, refused, removed."""
    if not sends:
        return []
    vapid()  # made once, before the threads share it
    bodies = {id(message): json.dumps(message, separators=(",", ":")) for _, message in sends}
    subscriptions = [subscription for subscription, _ in sends]
    threads = min(len(sends), settings.PUSH_SEND_THREADS)
    with ThreadPoolExecutor(threads, thread_name_prefix="push") as pool:
        results = list(
            pool.map(
                lambda send: _post(send[0], bodies[id(send[1])], severity=severity, topic=topic),
                sends,
            )
        )
    for subscription, result in zip(subscriptions, results, strict=True):
        if result in ("gone", "invalid"):
            subscription.delete()
        if result == "refused":
            it_warn(
                kind="push_endpoint_refused",
                text="A push endpoint's name pointed at a private or loopback address.",
                details={"subscription": subscription.id, "user": subscription.user_id},
            )
    removed = {"gone": "removed", "invalid": "removed"}
    return [(s, removed.get(r, r)) for s, r in zip(subscriptions, results, strict=True)]


def _post(subscription: PushSubscription, body: str, *, severity: str, topic: str) -> str:
    try:
        # Rows from before endpoints were checked, or a host IT has since dropped.
        endpoint_check(subscription.endpoint, resolve=False)
    except PushRefused as error:
        logger.warning("Push subscription %s dropped: %s", subscription.id, error.detail)
        return "invalid"
    info: dict[str, object] = {"endpoint": subscription.endpoint}
    info["keys"] = {"p256dh": subscription.p256dh, "auth": subscription.auth}
    try:
        webpush(
            info,
            data=body,
            vapid_private_key=vapid(),
            # A fresh dict each time: webpush writes the first endpoint's "aud" into it.
            vapid_claims={"sub": settings.VAPID_SUBJECT},
            ttl=TTL_SECONDS[severity],
            headers={"Topic": topic, "Urgency": URGENCY[severity]},
            timeout=(settings.PUSH_CONNECT_TIMEOUT, settings.PUSH_READ_TIMEOUT),
            requests_session=_session(),
        )
    except WebPushException as error:
        if error.status_code in GONE:
            return "gone"
        logger.warning("Push to subscription %s failed: %s", subscription.id, error.message)
        return "failed"
    except InvalidIPAddress as error:
        logger.warning("Push to subscription %s refused: %s is private", subscription.id, error)
        return "refused"
    except OSError as error:  # requests' connection errors are OSErrors
        logger.warning("Push to subscription %s failed: %s", subscription.id, error)
        return "failed"
    return "sent"


def _session() -> HTTPSession:
    # Resolves the name, checks the address and connects to that very address (TLS still
    # checks the name), so DNS answering anew between check and connect changes nothing.
    config = Config(
        ip_filter_enable=True,
        ip_filter_allow_loopback_ips=settings.PUSH_UNSAFE_LOOPBACK_FOR_TESTS,
        never_redirect=True,
        default_timeout=(settings.PUSH_CONNECT_TIMEOUT, settings.PUSH_READ_TIMEOUT),
    )
    return HTTPSession(config)


def _count(outcome: PushOutcome, result: str) -> None:
    outcome.sent += result == "sent"
    outcome.removed += result == "removed"
    outcome.refused += result == "refused"


def _cap_check(user: User) -> None:
    cap = settings.PUSH_MAX_DEVICES_PER_USER
    if PushSubscription.objects.filter(user=user).count() >= cap:
        raise PushRefused(
            f"At most {cap} devices per account receive notifications: turn one off first."
        )


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _count_suppressed(subscription_id: int, door: str, event: Event) -> int:
    key = _flood_key(subscription_id, door)
    name = event.door.name if event.door else event.door_external_id
    latest: dict = {"door": event.door_id or "", "latest": event.id, "severity": event.severity}
    pipe = redis_client().pipeline()
    pipe.hincrby(key, "count", 1)
    pipe.hset(key, mapping={**latest, "name": name})
    pipe.expire(key, settings.PUSH_WINDOW_SECONDS * 10)
    return pipe.execute()[0]


def _window_key(subscription_id: int, door: str) -> str:
    return f"responder:push:window:{subscription_id}:{door}"


def _flood_key(subscription_id: int, door: str) -> str:
    return f"responder:push:flood:{subscription_id}:{door}"
