"""The LLM responder: any OpenAI-compatible POST {base_url}/chat/completions.

Timeouts, a few retries with exponential backoff on what may pass (timeouts,
connection errors, 429, 5xx), none on what will not (other 4xx). Every failure
ends in the agent's fallback text, never in silence; the error is kept on the
AgentReply row for the operator.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import httpx
from django.conf import settings

from agents.responders import Answer, Context
from waplatform import egress
from waplatform.backoff import backoff_delay

logger = logging.getLogger(__name__)


@dataclass
class Endpoint:
    base_url: str
    model: str
    api_key: str
    temperature: float
    system_prompt: str
    # The operator's own endpoint (AGENTS_LLM_BASE_URL): trusted, so not through the egress guard.
    trusted: bool = False
    key_note: str = ""  # why a stored key was withheld, added to a failure's error


class LLMError(Exception):
    pass


def build_messages(*, endpoint: Endpoint, context: Context) -> list[dict]:
    system = endpoint.system_prompt or settings.AGENTS_LLM_DEFAULT_SYSTEM_PROMPT
    messages = [{"role": "system", "content": system}]
    for role, text in context.history:
        if role == "note":
            # Switch notes tell the new agent it joins a running conversation.
            messages.append({"role": "system", "content": text})
        elif text:
            messages.append({"role": role, "content": text})
    return messages


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, (httpx.TimeoutException, httpx.TransportError)):
        return True
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code == 429 or exc.response.status_code >= 500
    return False


def _call(client: httpx.Client, endpoint: Endpoint, messages: list[dict]) -> dict:
    headers = {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}
    response = client.post(
        f"{endpoint.base_url.rstrip('/')}/chat/completions",
        json={"model": endpoint.model, "messages": messages, "temperature": endpoint.temperature},
        headers=headers,
    )
    response.raise_for_status()
    return response.json()


def answer(*, endpoint: Endpoint, context: Context, fallback_text: str) -> Answer:
    if not endpoint.base_url or not endpoint.model:
        return Answer(text=fallback_text, source="fallback", cacheable=False,
                      error="No LLM endpoint configured (base URL and model).")
    messages = build_messages(endpoint=endpoint, context=context)
    attempts = max(1, settings.AGENTS_LLM_MAX_ATTEMPTS)
    last_error = ""
    # A tenant's URL is a tenant's URL: resolved once, private addresses refused (waplatform/egress.py).
    client = (httpx.Client(timeout=settings.AGENTS_LLM_TIMEOUT_SECONDS) if endpoint.trusted
              else egress.guarded_client(timeout=settings.AGENTS_LLM_TIMEOUT_SECONDS))
    with client:
        for attempt in range(1, attempts + 1):
            try:
                body = _call(client, endpoint, messages)
                text = ((body.get("choices") or [{}])[0].get("message") or {}).get("content") or ""
                usage = body.get("usage") or {}
                if not text.strip():
                    raise LLMError("the completion had no text")
                return Answer(text=text.strip()[: settings.MESSAGE_MAX_TEXT_LENGTH], source="llm",
                              prompt_tokens=int(usage.get("prompt_tokens") or 0),
                              completion_tokens=int(usage.get("completion_tokens") or 0))
            except (httpx.HTTPError, LLMError, ValueError, KeyError, IndexError, AttributeError) as exc:
                last_error = f"{type(exc).__name__}: {exc}"[:1000]
                if attempt == attempts or not _retryable(exc):
                    break
                # AGENTS_LLM_MAX_ATTEMPTS is what bounds the wait: the cap is never reached.
                base = settings.AGENTS_LLM_RETRY_BASE_SECONDS
                time.sleep(backoff_delay(attempt, base=base, cap=base * 2 ** (attempts - 1)))
    if endpoint.key_note:
        last_error = f"{last_error} ({endpoint.key_note})"[:1000]
    logger.warning("LLM call to %s failed after %d attempt(s): %s", endpoint.base_url, attempt, last_error)
    return Answer(text=fallback_text, source="fallback", error=last_error, cacheable=False)
