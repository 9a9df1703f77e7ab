"""Retry delays: exponential backoff with jitter, the one formula every retry uses.

Jitter spreads the retries of a burst that failed together (a bridge restart,
a receiver that was down) so that they do not all come back in the same second.
"""

import random


def backoff_delay(attempt: int, *, base: float, cap: float) -> float:
    """Seconds to wait before retry number `attempt` (1 = the first retry).

    The ceiling doubles per attempt up to `cap`; the delay is uniform in the
    upper half of it, so it never collapses to zero and never exceeds `cap`.
    """
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    return random.uniform(ceiling / 2, ceiling)
