"""Writes for agents, by topic (docs/agents.md):

- definitions: agents, triggers, knowledge entries, the tenant's agent config;
- routing: the conversation's state, switching, hand-off and resume;
- answering: asking the responder and sending its answer.

Callers use `from agents import services; services.X`: the topic modules are
where the code lives, not an interface of their own.
"""

from agents.services.answering import (answer_for, is_own_reply, record_reply, respond, respond_job_id,
                                       sweep_unanswered)
from agents.services.definitions import (
    AGENT_FIELDS,
    CONFIG_FIELDS,
    TRIGGER_FIELDS,
    check_agent,
    check_knowledge_entry,
    check_trigger,
    create_agent,
    create_knowledge_entry,
    create_trigger,
    delete_agent,
    delete_agent_config,
    delete_knowledge_entry,
    delete_trigger,
    disable_trigger,
    update_agent,
    update_agent_config,
    update_knowledge_entry,
    update_trigger,
)
from agents.services.routing import (
    handoff,
    lock_state,
    pause_for_manual_reply,
    resume,
    route_inbound,
    set_active_agent,
)

__all__ = [
    "AGENT_FIELDS", "CONFIG_FIELDS", "TRIGGER_FIELDS",
    "answer_for", "check_agent", "check_knowledge_entry", "check_trigger", "create_agent", "create_knowledge_entry",
    "create_trigger", "delete_agent", "delete_agent_config", "delete_knowledge_entry", "delete_trigger",
    "disable_trigger", "handoff", "is_own_reply", "lock_state", "pause_for_manual_reply", "record_reply", "respond",
    "respond_job_id",
    "resume", "route_inbound", "set_active_agent", "sweep_unanswered", "update_agent", "update_agent_config",
    "update_knowledge_entry", "update_trigger",
]
