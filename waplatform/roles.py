"""Which parts of the platform a host runs: WAP_ROLES, read by the launcher.

`web,worker:high+medium+low,worker:ai,scheduler,bridges` is one host's share;
unset means every role, so `make run` stays the whole platform on one machine
(docs/deployment.md, "Roles").
"""

from __future__ import annotations

from dataclasses import dataclass

ROLE_NAMES = ("redis", "web", "worker", "scheduler", "bridges")


@dataclass(frozen=True)
class Roles:
    redis: bool
    web: bool
    scheduler: bool
    bridges: bool
    queues: tuple[str, ...]  # the worker pools this host runs, in settings.QUEUE_NAMES order

    def names(self) -> list[str]:
        named = [n for n in ("redis", "web", "scheduler", "bridges") if getattr(self, n)]
        if self.queues:
            named.append("worker:" + "+".join(self.queues))
        return named


def parse_roles(value: str | None, *, queue_names: list[str] | tuple[str, ...] | None) -> Roles:
    """Raises ValueError with a message naming the valid roles and queues. queue_names None:
    queues are not checked (the launcher decides about Redis before settings can be read)."""
    queue_names = tuple(queue_names or ())
    check_queues = bool(queue_names)
    if value is None or not value.strip():
        return Roles(redis=True, web=True, scheduler=True, bridges=True, queues=tuple(queue_names))
    seen: set[str] = set()
    queues: set[str] = set()
    for token in (t.strip() for t in value.split(",")):
        if not token:
            continue
        name, _, spec = token.partition(":")
        if name not in ROLE_NAMES:
            raise ValueError(f"WAP_ROLES: unknown role {name!r}; roles are {', '.join(ROLE_NAMES)} "
                             f"(worker:QUEUE+QUEUE for some queues), comma-separated")
        if spec and name != "worker":
            raise ValueError(f"WAP_ROLES: {token!r}: only worker takes queues (worker:high+medium)")
        seen.add(name)
        if name == "worker":
            wanted = [q.strip() for q in spec.split("+") if q.strip()] if spec else list(queue_names)
            unknown = [q for q in wanted if check_queues and q not in queue_names]
            if unknown:
                raise ValueError(f"WAP_ROLES: unknown queue {', '.join(unknown)} in {token!r}; "
                                 f"queues are {', '.join(queue_names)}")
            queues.update(wanted)
    return Roles(
        redis="redis" in seen, web="web" in seen, scheduler="scheduler" in seen, bridges="bridges" in seen,
        queues=tuple(q for q in queue_names if q in queues) if check_queues else tuple(sorted(queues)),
    )


def web_ports(base_port: int, processes: int) -> list[int]:
    return [base_port + i for i in range(processes)]
