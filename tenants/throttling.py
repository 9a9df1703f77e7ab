"""Per-tier API rate limits, counted in Redis so every web process shares them."""

import time

from rest_framework.throttling import BaseThrottle

from tenants.authentication import MemberAccess
from tenants.permissions import TENANT_ACCESS
from waplatform.redis import get_cache_redis

WINDOW_SECONDS = 60


class TierRateThrottle(BaseThrottle):
    """A fixed one-minute window per tenant, sized by its tier.

    INCR is atomic, so concurrent requests on several processes never slip
    past the limit together (DRF's SimpleRateThrottle reads-then-writes a
    list in the cache, which races).
    """

    def allow_request(self, request, view) -> bool:
        access = request.auth
        if not isinstance(access, TENANT_ACCESS):
            return True
        limit = access.tenant.tier.api_rate_limit_per_minute
        now = time.time()
        window = int(now // WINDOW_SECONDS)
        # A person in the live inbox gets a budget of their own: the tenant's integration
        # must not be throttled because its agents have the inbox open, nor the reverse.
        who = f"user-{access.user.pk}" if isinstance(access, MemberAccess) else "keys"
        key = f"wap:throttle:{access.tenant.pk}:{who}:{window}"
        pipe = get_cache_redis().pipeline()
        pipe.incr(key)
        pipe.expire(key, WINDOW_SECONDS + 5)
        count, _ = pipe.execute()
        self._wait = (window + 1) * WINDOW_SECONDS - now
        return count <= limit

    def wait(self) -> float:
        return max(1.0, self._wait)
