"""Webhook intake from bridges: verify on the raw body first, store, answer fast.

Fail closed: an unknown slot, a missing or wrong signature, or an unset
secret answers 401 and stores nothing. Verification and parsing are cheap and
done here; storing is one transaction; everything slower (tenant webhooks,
live inbox, agents) runs after commit through the event bus and its jobs.
"""

import logging

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from messaging.services import handle_bridge_events
from pooling.bridges.base import InvalidSignature
from pooling.bridges.cloud import CloudBridge
from pooling.bridges.waha import WahaBridge
from pooling.models import Slot
from waplatform.json_limits import JsonRefused

logger = logging.getLogger(__name__)


def _unauthorised() -> JsonResponse:
    return JsonResponse({"code": "invalid_signature", "detail": "Missing or invalid webhook signature."}, status=401)


def _not_json(exc: ValueError) -> JsonResponse:
    if isinstance(exc, JsonRefused):
        return JsonResponse({"code": exc.code, "detail": str(exc)}, status=400)
    return JsonResponse({"code": "invalid", "detail": "Body is not JSON."}, status=400)


def _accepted(result) -> JsonResponse:
    return JsonResponse({
        "received": len(result.received), "duplicates": result.duplicates,
        "statuses": result.statuses, "sessions": result.sessions, "refused": result.refused,
    })


@csrf_exempt
@require_http_methods(["POST"])
def waha_hook(request, slot_id: int):
    # The slot's own key, read directly: pooling's routing needs the parsed body,
    # and nothing may be parsed before the signature holds.
    secret = Slot.objects.filter(pk=slot_id).values_list("webhook_secret", flat=True).first() or ""
    try:
        events = WahaBridge.parse_webhook(request.body, request.headers, secret, max_depth=settings.API_JSON_MAX_DEPTH)
    except InvalidSignature:
        logger.warning("waha webhook for slot %s refused: bad signature", slot_id)
        return _unauthorised()
    except ValueError as exc:
        return _not_json(exc)
    return _accepted(handle_bridge_events(events=events, slot_id=slot_id, dialect="waha"))


@csrf_exempt
@require_http_methods(["GET", "POST"])
def cloud_hook(request):
    if request.method == "GET":
        challenge = CloudBridge.verify_subscription(request.GET, settings.CLOUD_API_VERIFY_TOKEN)
        if challenge is None:
            return JsonResponse({"code": "verification_failed",
                                 "detail": "hub.verify_token does not match CLOUD_API_VERIFY_TOKEN."}, status=403)
        return HttpResponse(challenge, content_type="text/plain")
    try:
        events = CloudBridge.parse_webhook(request.body, request.headers, settings.CLOUD_API_APP_SECRET,
                                           max_depth=settings.API_JSON_MAX_DEPTH)
    except InvalidSignature:
        logger.warning("cloud webhook refused: bad signature")
        return _unauthorised()
    except ValueError as exc:
        return _not_json(exc)
    return _accepted(handle_bridge_events(events=events, dialect="cloud"))
