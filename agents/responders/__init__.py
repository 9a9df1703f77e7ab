"""Responders turn a conversation's context into an answer. They do network I/O
(the LLM) and so run outside any transaction; they never write."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Context:
    """What an agent sees: the whole recent conversation, switch notes included.

    `turn` is what the contact said since the last answer (several quick
    messages answered as one); `history` is (role, text) oldest first, role
    "user" for the contact, "assistant" for us, "note" for switch notes.
    """

    conversation_id: int
    turn: list[str]
    history: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Answer:
    text: str
    source: str  # AgentReply.Source
    confidence: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str = ""
    handoff: bool = False  # send the text, then hand the conversation to a human
    cacheable: bool = True
    cached: bool = False  # served from the response cache

    def as_cache(self) -> dict:
        return {"text": self.text, "source": self.source, "confidence": self.confidence, "handoff": self.handoff}
