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

logger = logging.getLogger(__name__)


def _unauthorised() -> JsonResponse:
    return JsonResponse({"code": "invalid_signature", "detail": "Missing or invalid webhook signature."}, status=401)


def _accepted(result) -> JsonResponse:
    return JsonResponse({
        "received": len(result.received), "duplicates": result.duplicates,
        "statuses": result.statuses, "sessions": result.sessions,
    })


@csrf_exempt
@require_http_methods(["POST"])
def waha_hook(request, slot_id: int):
    # The slot's own key, read directly: pooling's routing needs the parsed body,
    # and nothing may be parsed before the signature holds.
    secret = Slot.objects.filter(pk=slot_id).values_list("webhook_secret", flat=True).first() or ""
    try:
        events = WahaBridge.parse_webhook(request.body, request.headers, secret)
    except InvalidSignature:
        logger.warning("waha webhook for slot %s refused: bad signature", slot_id)
        return _unauthorised()
    except ValueError:
        return JsonResponse({"code": "invalid", "detail": "Body is not JSON."}, status=400)
    return _accepted(handle_bridge_events(events=events, slot_id=slot_id, dialect="waha"))


@csrf_exempt
@require_http_methods(["GET", "POST"])
def cloud_hook(request):
    if request.method == "GET":
        challenge = CloudBridge.verify_subscription(request.GET, settings.CLOUD_API_VERIFY_TOKEN)
        if challenge is None:
            return HttpResponse("verification failed", status=403, content_type="text/plain")
        return HttpResponse(challenge, content_type="text/plain")
    try:
        events = CloudBridge.parse_webhook(request.body, request.headers, settings.CLOUD_API_APP_SECRET)
    except InvalidSignature:
        logger.warning("cloud webhook refused: bad signature")
        return _unauthorised()
    except ValueError:
        return JsonResponse({"code": "invalid", "detail": "Body is not JSON."}, status=400)
    return _accepted(handle_bridge_events(events=events, dialect="cloud"))
