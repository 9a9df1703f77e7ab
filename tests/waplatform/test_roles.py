"""WAP_ROLES as an operator writes it (waplatform/roles.py)."""

import pytest

from waplatform.roles import parse_roles

QUEUES = ["high", "medium", "low", "ai", "webhooks", "maintenance"]


def test_unset_roles_are_the_whole_platform_with_its_embedded_redis():
    roles = parse_roles("", queue_names=QUEUES)
    assert roles.redis and roles.web and roles.scheduler and roles.bridges
    assert roles.queues == tuple(QUEUES)


def test_worker_entries_add_up_in_queue_order_and_nothing_else_runs():
    roles = parse_roles("worker:ai, worker:low+high", queue_names=QUEUES)
    assert roles.queues == ("high", "low", "ai")
    assert not (roles.redis or roles.web or roles.scheduler or roles.bridges)
    assert roles.names() == ["worker:high+low+ai"]


def test_a_bare_worker_runs_every_queue():
    assert parse_roles("web,worker", queue_names=QUEUES).queues == tuple(QUEUES)


@pytest.mark.parametrize("value, says", [
    ("web,cron", "unknown role 'cron'"),
    ("worker:urgent", "unknown queue urgent"),
    ("web:8000", "only worker takes queues"),
])
def test_a_mistake_names_what_is_valid(value, says):
    with pytest.raises(ValueError, match=says):
        parse_roles(value, queue_names=QUEUES)
