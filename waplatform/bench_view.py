"""The `api` benchmark's floor: the cheapest Django view behind the same daphne and middleware.

GET /api/v1/tenant is compared with this (docs/performance.md, "API"): what an
endpoint costs above it is the platform's own work (key, throttle, serializer).
Routed only when BENCH_BARE_VIEW is on (waplatform/urls.py), which no deployment sets.
"""

from django.http import JsonResponse


def bare(request):
    return JsonResponse({"ok": True})
