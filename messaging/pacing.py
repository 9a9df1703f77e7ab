"""Send pacing per sending number and per recipient pair, in Redis (shared by every worker).

A reservation scheduler (GCRA): each call books the next free send time on
the key and says how long to wait for it. Booking, rather than "try again
later", means a burst of queued messages spreads out evenly instead of all
retrying at the same instant; the caller then sends at its booked time
without asking again (Message.paced_until).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from django.conf import settings

from waplatform.redis import get_cache_redis

# Redis's clock, not the workers': workers on several hosts must agree. Books every key
# given (the number's bucket, the recipient pair's) in one round trip; returns the longest wait.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local longest = 0
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local allowance = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local wait = tat - now - allowance
  if wait > longest then longest = wait end
  local new_tat = tat + interval
  redis.call('SET', key, tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
end
return tostring(longest)
"""
_script = None


def _reserve(buckets: list[tuple[str, float, int]]) -> float:
    """Book one send on each (key, per_second, burst) bucket; the wait until all of them allow it."""
    global _script
    if _script is None:
        _script = get_cache_redis().register_script(_RESERVE)
    args: list[str] = []
    for _, per_second, burst in buckets:
        interval = 1.0 / per_second
        args += [repr(interval), repr(interval * max(0, burst - 1))]
    return float(_script(keys=[key for key, _, _ in buckets], args=args))


@dataclass(frozen=True)
class Pace:
    wait_seconds: float


def reserve_send(*, number_key: str, recipient: str, dialect: str, tier_rate: float) -> Pace:
    """Book a send slot on the number's bucket and on the (number, recipient) pair.

    Cloud API numbers run at CLOUD_MESSAGES_PER_SECOND (Meta's 80/s default);
    WhatsApp Web sessions (waha, sandbox) at the tier's rate plus random jitter,
    since machine-regular sends are what gets numbers banned.
    """
    if dialect == "cloud":
        # No burst for Meta's limit: with one, any one-second window could hold
        # limit + burst sends (84 of 80 measured by bench `pacing`), and Meta
        # answers the excess with 130429.
        rate, jitter, burst = settings.CLOUD_MESSAGES_PER_SECOND, 0.0, settings.CLOUD_PACING_BURST
    else:
        rate, jitter, burst = max(tier_rate, 0.01), random.uniform(0, settings.PACING_JITTER_SECONDS), settings.PACING_BURST
    wait = _reserve([
        (f"wap:pace:num:{number_key}", rate, burst),
        (f"wap:pace:pair:{number_key}:{recipient}", 1.0 / settings.PAIR_INTERVAL_SECONDS, settings.PAIR_BURST),
    ])
    return Pace(wait_seconds=wait + jitter if wait > 0 else jitter * 0.2)
