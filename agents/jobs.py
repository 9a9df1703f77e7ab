"""rq entry points on the `ai` queue: take ids, re-read, do nothing when the work is done."""

from agents import services


def respond(conversation_id: int, message_id: int) -> str:
    return services.respond(conversation_id=conversation_id, message_id=message_id)


def sweep() -> int:
    return services.sweep_unanswered()
