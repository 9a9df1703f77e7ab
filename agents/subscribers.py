"""The agents' subscriber on the event bus (registered in its AppConfig.ready()).

It runs in whatever process committed the event (a webhook request, a send
worker), so it stays fast: an inbound message only schedules the reply job,
debounced; the routing and answering happen on the `ai` queue.
"""

from __future__ import annotations

import logging

from django.conf import settings

from agents import services
from waplatform.queues import enqueue_on_commit

logger = logging.getLogger(__name__)


def schedule_reply(*, conversation_id: int, message_id: int) -> None:
    """One job per inbound message, due after the debounce window. Each job answers only
    if no newer inbound message exists by then, so a burst of messages gets one reply:
    the last one's, covering them all."""
    enqueue_on_commit("agents.jobs.respond", conversation_id, message_id, queue="ai",
                      delay=settings.AGENTS_DEBOUNCE_SECONDS, job_id=services.respond_job_id(message_id))


def on_event(event: dict) -> None:
    data = event.get("data") or {}
    if event["type"] == "message.received" and data.get("direction") == "in":
        schedule_reply(conversation_id=data["conversation_id"], message_id=data["id"])
    elif event["type"] == "message.queued" and not services.is_own_reply(data):
        # Accepted through the API or the inbox; our own replies have an AgentReply row by now
        # (written in the same transaction as the message), so they are told apart.
        services.pause_for_manual_reply(message_id=data["id"], conversation_id=data["conversation_id"])
    elif event["type"] == "message.sent" and data.get("direction") == "out" and not data.get("attempts"):
        # Also a person: written on the phone itself, reported by the bridge as from_me. A message
        # with attempts went through our send flow (pause_for_manual_reply would refuse it too).
        services.pause_for_manual_reply(message_id=data["id"], only_from_phone=True,
                                        conversation_id=data["conversation_id"])
