"""Whose LLM key goes where (docs/security.md, "LLM keys").

- A tenant's key (AgentConfig.llm_api_key, Agent.llm_api_key), and a key read from an
  environment variable staff named for it (llm_api_key_env), is sent only to the base
  URL it was stored with (llm_api_key_url). Changing the URL without re-entering the
  key is refused: the key would otherwise follow the URL to wherever it now points.
- The platform's key (the variable AGENTS_LLM_API_KEY_ENV names) is sent only to
  AGENTS_LLM_BASE_URL, the operator's endpoint, never to a tenant's URL.
- Only the operator's endpoint skips the egress guard; a tenant's URL is a tenant URL.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError

from agents.models import Agent, AgentConfig

ENV_NAME_STAFF_ONLY = ("Naming an environment variable is for platform staff; store your own key in "
                       "llm_api_key instead.")


def _same_url(a: str, b: str) -> bool:
    return bool(a) and a.rstrip("/") == b.rstrip("/")


def platform_url() -> str:
    return settings.AGENTS_LLM_BASE_URL


def config_url(config: AgentConfig) -> str:
    return config.llm_base_url or platform_url()


def agent_url(agent: Agent, config: AgentConfig) -> str:
    return agent.llm_base_url or config_url(config)


@dataclass
class Resolved:
    base_url: str
    api_key: str
    trusted: bool  # the operator's own endpoint: not subject to the egress guard
    note: str = ""  # why a stored key was not sent (for the reply's error)


def resolve(*, agent: Agent, config: AgentConfig) -> Resolved:
    base_url = agent_url(agent, config)
    candidates = [
        (agent.llm_api_key, agent.llm_api_key_url, "the agent's key"),
        (os.environ.get(agent.llm_api_key_env, "") if agent.llm_api_key_env else "", agent.llm_api_key_url,
         f"the key in {agent.llm_api_key_env}"),
        (config.llm_api_key, config.llm_api_key_url, "the tenant's key"),
        (os.environ.get(config.llm_api_key_env, "") if config.llm_api_key_env else "", config.llm_api_key_url,
         f"the key in {config.llm_api_key_env}"),
        (os.environ.get(settings.AGENTS_LLM_API_KEY_ENV, "") if settings.AGENTS_LLM_API_KEY_ENV else "",
         platform_url(), "the platform's key"),
    ]
    withheld = []
    for key, bound_to, name in candidates:
        if not key:
            continue
        if _same_url(bound_to, base_url):
            return Resolved(base_url=base_url, api_key=key, trusted=_same_url(platform_url(), base_url))
        withheld.append(name)
    note = (f"{', '.join(withheld)} not sent: a key goes only to the URL it was stored with" if withheld else "")
    return Resolved(base_url=base_url, api_key="", trusted=_same_url(platform_url(), base_url), note=note)


def bind(obj: Agent | AgentConfig, *, changed: set[str], url_now: str, url_before: str) -> None:
    """Called by the services after applying changes, before saving `obj`.

    A key or env name set in this change is bound to the URL it now uses; a URL that
    moves away from a stored key without the key being given again is refused.
    """
    has_key = bool(obj.llm_api_key or obj.llm_api_key_env)
    if changed & {"llm_api_key", "llm_api_key_env"}:
        obj.llm_api_key_url = url_now if has_key else ""
        return
    if has_key and not _same_url(url_now, url_before) and not _same_url(url_now, obj.llm_api_key_url):
        raise ValidationError({"llm_base_url": (
            "The stored LLM key was set for another URL and is only sent there. Give llm_api_key again "
            "with the new URL, or clear it (llm_api_key: \"\").")})


def refuse_env_name_unless_staff(data: dict, *, is_staff: bool) -> None:
    """Tenants may clear llm_api_key_env, not name one: its value would be sent to their URL."""
    if data.get("llm_api_key_env") and not is_staff:
        raise ValidationError({"llm_api_key_env": ENV_NAME_STAFF_ONLY})


def config_of(tenant_id: int) -> AgentConfig:
    return AgentConfig.objects.filter(tenant_id=tenant_id).first() or AgentConfig(tenant_id=tenant_id)


def url_of_agent(agent: Agent) -> str:
    return agent_url(agent, config_of(agent.tenant_id))


def bind_agent(agent: Agent, *, changed: set[str], url_before: str | None) -> None:
    url_now = url_of_agent(agent)
    bind(agent, changed=changed, url_now=url_now, url_before=url_now if url_before is None else url_before)


def bind_config(config: AgentConfig, *, changed: set[str], url_before: str) -> None:
    bind(config, changed=changed, url_now=config_url(config), url_before=url_before)
