"""Names whose DNS answers a test decides, for the egress guard's EGRESS_RESOLVER setting.

The guard resolves every name through the function EGRESS_RESOLVER names (in
production waplatform.egress.resolve_system); a test points the setting here
and says what each lookup of a name answers, in order. Everything else in the
guard (the check, the pinned connect) runs as in production. Names not in the
table go to the system resolver.
"""

from __future__ import annotations

from collections import defaultdict

from waplatform.egress import resolve_system

ANSWERS: dict[str, list[list[str]]] = {}
LOOKUPS: dict[str, int] = defaultdict(int)
RESOLVER = "tests.egress_names.resolve"


def answer(name: str, *answers: list[str]) -> None:
    """Lookups of `name` answer these in turn; the last one repeats."""
    ANSWERS[name] = list(answers)
    LOOKUPS[name] = 0


def resolve(host: str, port: int) -> list[str]:
    if host not in ANSWERS:
        return resolve_system(host, port)
    LOOKUPS[host] += 1
    answers = ANSWERS[host]
    return answers[min(LOOKUPS[host], len(answers)) - 1]


def reset() -> None:
    ANSWERS.clear()
    LOOKUPS.clear()
