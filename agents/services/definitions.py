"""Definitions: agents, their triggers and knowledge, and the tenant's agent config.

Every change bumps the version of the agents it affects (cached answers carry
the version in their key) and, when routing can see it, replaces the tenant's
trigger-cache stamp after commit. The API and the admin both come through here.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from agents import caches, llm_keys
from agents.models import Agent, AgentConfig, KnowledgeEntry, Trigger
from agents.triggers import TriggerSpecError, check_pattern_is_bounded, compile_spec, validate_time_zone
from tenants.models import Tenant
from waplatform.events import publish_event

AGENT_FIELDS = {
    "name", "kind", "is_default", "active", "greeting", "fallback_text", "confidence_threshold",
    "on_low_confidence", "llm_base_url", "llm_model", "llm_api_key_env", "llm_api_key", "temperature", "system_prompt",
}
TRIGGER_FIELDS = {"agent", "kind", "keywords", "match", "case_sensitive", "pattern", "office_hours",
                  "outside_hours", "priority", "active"}
CONFIG_FIELDS = {"llm_base_url", "llm_model", "llm_api_key", "llm_api_key_env", "pause_on_manual_reply"}


def _invalidate_triggers_on_commit(tenant_id: int) -> None:
    transaction.on_commit(lambda: caches.invalidate_triggers(tenant_id))


def check_agent(*, agent: Agent) -> None:
    """Raise ValidationError for what the agent services would refuse (forms call it to show why)."""
    if agent.confidence_threshold is not None and not 0 <= agent.confidence_threshold <= 1:
        raise ValidationError({"confidence_threshold": "Use a value between 0 and 1."})
    if not 0 <= agent.temperature <= 2:
        raise ValidationError({"temperature": "Use a value between 0 and 2."})
    if agent.is_default and not agent.active:
        raise ValidationError({"is_default": "The default agent must be active."})
    # Not the one-default constraint: taking the flag moves it (_save_agent).
    agent.full_clean(validate_constraints=False)


def _save_agent(agent: Agent) -> Agent:
    check_agent(agent=agent)
    if agent.is_default:
        # One default per tenant (a DB constraint too): taking the flag moves it.
        Agent.objects.filter(tenant_id=agent.tenant_id, is_default=True).exclude(pk=agent.pk).update(
            is_default=False, version=F("version") + 1)
    agent.save()
    _invalidate_triggers_on_commit(agent.tenant_id)
    return agent


@transaction.atomic
def create_agent(*, tenant: Tenant, name: str, kind: str, **fields) -> Agent:
    unknown = set(fields) - AGENT_FIELDS
    if unknown:
        raise TypeError(f"unknown agent fields {sorted(unknown)}")
    if Agent.objects.filter(tenant=tenant, name=name).exists():
        raise ValidationError({"name": f"This tenant already has an agent named {name!r}."})
    agent = Agent(tenant=tenant, name=name, kind=kind, **fields)
    llm_keys.bind_agent(agent, changed=set(fields), url_before=None)
    return _save_agent(agent)


@transaction.atomic
def update_agent(*, agent: Agent, **fields) -> Agent:
    unknown = set(fields) - AGENT_FIELDS
    if unknown:
        raise TypeError(f"unknown agent fields {sorted(unknown)}")
    agent = Agent.objects.select_for_update().get(pk=agent.pk)
    if "name" in fields and Agent.objects.filter(tenant_id=agent.tenant_id, name=fields["name"]) \
            .exclude(pk=agent.pk).exists():
        raise ValidationError({"name": f"This tenant already has an agent named {fields['name']!r}."})
    url_before = llm_keys.url_of_agent(agent)
    for name, value in fields.items():
        setattr(agent, name, value)
    llm_keys.bind_agent(agent, changed=set(fields), url_before=url_before)
    agent.version += 1
    return _save_agent(agent)


@transaction.atomic
def delete_agent(*, agent: Agent) -> None:
    tenant_id = agent.tenant_id
    # States pointing at it fall back to no agent (SET_NULL), i.e. the default agent.
    agent.delete()
    _invalidate_triggers_on_commit(tenant_id)


@transaction.atomic
def update_agent_config(*, tenant: Tenant, **fields) -> AgentConfig:
    unknown = set(fields) - CONFIG_FIELDS
    if unknown:
        raise TypeError(f"unknown config fields {sorted(unknown)}")
    config, _ = AgentConfig.objects.select_for_update().get_or_create(tenant=tenant)
    url_before = llm_keys.config_url(config)
    for name, value in fields.items():
        setattr(config, name, value)
    llm_keys.bind_config(config, changed=set(fields), url_before=url_before)
    config.full_clean()
    config.save()
    if set(fields) - {"pause_on_manual_reply"}:
        # Cached responses were produced by the previous model/endpoint.
        Agent.objects.filter(tenant=tenant, kind=Agent.Kind.LLM).update(version=F("version") + 1)
    return config


@transaction.atomic
def delete_agent_config(*, tenant: Tenant) -> None:
    """Back to the platform's LLM defaults (AGENTS_LLM_*)."""
    AgentConfig.objects.filter(tenant=tenant).delete()
    Agent.objects.filter(tenant=tenant, kind=Agent.Kind.LLM).update(version=F("version") + 1)


def check_trigger(*, trigger: Trigger) -> None:
    """Raise ValidationError for a trigger the trigger services would refuse."""
    if trigger.agent is not None and trigger.agent.tenant_id != trigger.tenant_id:
        raise ValidationError({"agent": "No such agent in this tenant."})
    # Every trigger belongs to an agent (it is listed under it); a finish trigger's
    # target is nevertheless always the tenant's default agent.
    if trigger.agent is None:
        raise ValidationError({"agent": f"A {trigger.kind} trigger belongs to an agent."})
    if trigger.kind == Trigger.Kind.HANDOFF and trigger.agent.kind != Agent.Kind.HUMAN:
        raise ValidationError({"kind": "A hand-off trigger belongs to a human agent: it hands conversations to it."})
    try:
        compile_spec({"id": trigger.pk, "kind": trigger.kind, "agent_id": trigger.agent_id,
                      "keywords": trigger.keywords, "match": trigger.match, "case_sensitive": trigger.case_sensitive,
                      "pattern": trigger.pattern, "office_hours": trigger.office_hours,
                      "outside_hours": trigger.outside_hours, "priority": trigger.priority})
        if trigger.kind == Trigger.Kind.OFFICE_HOURS:
            validate_time_zone(trigger.tenant.time_zone)
        if trigger.kind == Trigger.Kind.REGEX:
            check_pattern_is_bounded(trigger.pattern, case_sensitive=trigger.case_sensitive,
                                     timeout=settings.AGENTS_PATTERN_TIMEOUT_MS / 1000)
    except TriggerSpecError as exc:
        raise ValidationError({exc.field: str(exc)}) from None
    trigger.full_clean()


def _bump_agent(agent_id: int | None) -> None:
    if agent_id:
        Agent.objects.filter(pk=agent_id).update(version=F("version") + 1)


@transaction.atomic
def create_trigger(*, tenant: Tenant, kind: str, agent: Agent | None = None, **fields) -> Trigger:
    unknown = set(fields) - TRIGGER_FIELDS
    if unknown:
        raise TypeError(f"unknown trigger fields {sorted(unknown)}")
    trigger = Trigger(tenant=tenant, kind=kind, agent=agent, **fields)
    check_trigger(trigger=trigger)
    trigger.save()
    _bump_agent(trigger.agent_id)
    _invalidate_triggers_on_commit(tenant.pk)
    return trigger


@transaction.atomic
def update_trigger(*, trigger: Trigger, **fields) -> Trigger:
    unknown = set(fields) - TRIGGER_FIELDS
    if unknown:
        raise TypeError(f"unknown trigger fields {sorted(unknown)}")
    trigger = Trigger.objects.select_for_update().select_related("tenant").get(pk=trigger.pk)
    old_agent, old_pattern = trigger.agent_id, trigger.pattern
    for name, value in fields.items():
        setattr(trigger, name, value)
    check_trigger(trigger=trigger)
    if trigger.disabled_reason and trigger.active and (fields.get("active") or trigger.pattern != old_pattern):
        # The tenant switched it back on (or fixed the pattern), having passed the check above.
        trigger.disabled_reason, trigger.disabled_at = "", None
    trigger.save()
    _bump_agent(old_agent)
    _bump_agent(trigger.agent_id if trigger.agent_id != old_agent else None)
    _invalidate_triggers_on_commit(trigger.tenant_id)
    return trigger


@transaction.atomic
def disable_trigger(*, trigger_id: int, reason: str, conversation_id: int | None = None,
                    message_id: int | None = None) -> bool:
    """The platform switches a trigger off (its pattern ran past the time limit) and tells the tenant.

    Event `trigger.disabled`, to the tenant's webhooks and inbox like any other.
    False when it was already off: one event per disabling, however many jobs saw it.
    """
    trigger = Trigger.objects.select_for_update().filter(pk=trigger_id, active=True).first()
    if trigger is None:
        return False
    trigger.active = False
    trigger.disabled_reason = reason[:500]
    trigger.disabled_at = timezone.now()
    trigger.save(update_fields=["active", "disabled_reason", "disabled_at", "updated_at"])
    _bump_agent(trigger.agent_id)
    _invalidate_triggers_on_commit(trigger.tenant_id)
    publish_event(tenant_id=trigger.tenant_id, type="trigger.disabled", data={
        "trigger_id": trigger.pk, "agent_id": trigger.agent_id, "kind": trigger.kind, "pattern": trigger.pattern,
        "reason": trigger.disabled_reason, "disabled_at": trigger.disabled_at.isoformat(),
        "conversation_id": conversation_id, "message_id": message_id,
    })
    return True


@transaction.atomic
def delete_trigger(*, trigger: Trigger) -> None:
    tenant_id, agent_id = trigger.tenant_id, trigger.agent_id
    trigger.delete()
    _bump_agent(agent_id)
    _invalidate_triggers_on_commit(tenant_id)


def check_knowledge_entry(*, entry: KnowledgeEntry) -> None:
    """Raise ValidationError for an entry the knowledge services would refuse."""
    if not isinstance(entry.tags, list) or not all(isinstance(t, str) for t in entry.tags):
        raise ValidationError({"tags": "Tags are a list of strings."})
    if not entry.question.strip() or not entry.answer.strip():
        raise ValidationError({"question": "A knowledge entry needs a question and an answer."})
    if len(entry.answer) > settings.MESSAGE_MAX_TEXT_LENGTH:
        raise ValidationError({"answer": f"At most {settings.MESSAGE_MAX_TEXT_LENGTH} characters (WhatsApp's limit)."})
    entry.full_clean()


@transaction.atomic
def create_knowledge_entry(*, agent: Agent, question: str, answer: str, tags: list[str] | None = None) -> KnowledgeEntry:
    entry = KnowledgeEntry(agent=agent, question=question, answer=answer, tags=tags or [])
    check_knowledge_entry(entry=entry)
    entry.save()
    _bump_agent(agent.pk)  # cached answers came from the old knowledge
    return entry


@transaction.atomic
def update_knowledge_entry(*, entry: KnowledgeEntry, **fields) -> KnowledgeEntry:
    entry = KnowledgeEntry.objects.select_for_update().get(pk=entry.pk)
    for name in ("question", "answer", "tags"):
        if name in fields:
            setattr(entry, name, fields[name])
    check_knowledge_entry(entry=entry)
    entry.save()
    _bump_agent(entry.agent_id)
    return entry


@transaction.atomic
def delete_knowledge_entry(*, entry: KnowledgeEntry) -> None:
    agent_id = entry.agent_id
    entry.delete()
    _bump_agent(agent_id)
