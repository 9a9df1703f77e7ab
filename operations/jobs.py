import time

import httpx
from django.conf import settings

from operations.alerts import evaluate_alerts as _evaluate


def evaluate_alerts() -> list[str]:
    return _evaluate()


def post_alert(event: dict) -> int:
    """POST an alert to the operator's URL (ALERT_WEBHOOK_URL); rq retries are not worth it for alerts."""
    response = httpx.post(
        settings.ALERT_WEBHOOK_URL,
        json={"type": event["type"], "alert": event["data"], "at": time.time()},
        timeout=10,
    )
    return response.status_code
