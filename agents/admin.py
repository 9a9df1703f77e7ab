"""Admin for agents. Saves go through agents.services, so versions are bumped and the
tenant's trigger cache is invalidated exactly as through the API."""

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from agents import services
from agents.models import Agent, AgentConfig, AgentReply, AgentSwitch, ConversationState, KnowledgeEntry, Trigger


def _fields_of(obj, names):
    return {name: getattr(obj, name) for name in names}


class KnowledgeEntryInline(admin.TabularInline):
    model = KnowledgeEntry
    extra = 0
    fields = ["question", "answer", "tags"]
    show_change_link = True

    def has_change_permission(self, request, obj=None):
        return False  # edited one by one (through the service), see the change link


class TriggerInline(admin.TabularInline):
    model = Trigger
    fk_name = "agent"
    extra = 0
    fields = ["kind", "keywords", "match", "pattern", "priority", "active"]
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ["name", "tenant", "kind", "is_default", "active", "version", "updated_at"]
    list_select_related = ["tenant"]
    list_filter = ["kind", "active", "tenant"]
    search_fields = ["name"]
    readonly_fields = ["version", "created_at", "updated_at"]
    inlines = [TriggerInline, KnowledgeEntryInline]

    def save_model(self, request, obj, form, change):
        fields = _fields_of(obj, services.AGENT_FIELDS)
        if change:
            services.update_agent(agent=obj, **fields)
        else:
            fields.pop("name"), fields.pop("kind")
            saved = services.create_agent(tenant=obj.tenant, name=obj.name, kind=obj.kind, **fields)
            obj.pk = saved.pk

    def save_formset(self, request, form, formset, change):
        for entry in formset.save(commit=False):
            if isinstance(entry, KnowledgeEntry) and entry.pk is None:
                services.create_knowledge_entry(agent=form.instance, question=entry.question, answer=entry.answer,
                                                tags=entry.tags)
        for entry in formset.deleted_objects:
            if isinstance(entry, KnowledgeEntry):
                services.delete_knowledge_entry(entry=entry)

    def delete_model(self, request, obj):
        services.delete_agent(agent=obj)


@admin.register(Trigger)
class TriggerAdmin(admin.ModelAdmin):
    list_display = ["pk", "tenant", "agent", "kind", "keywords", "match", "pattern", "priority", "active"]
    list_select_related = ["tenant", "agent"]
    list_filter = ["kind", "active", "tenant"]
    raw_id_fields = ["agent"]

    def save_model(self, request, obj, form, change):
        fields = _fields_of(obj, services.TRIGGER_FIELDS)
        try:
            if change:
                services.update_trigger(trigger=obj, **fields)
            else:
                fields.pop("kind"), fields.pop("agent")
                obj.pk = services.create_trigger(tenant=obj.tenant, kind=obj.kind, agent=obj.agent, **fields).pk
        except ValidationError as exc:
            # The form cannot re-open from here; say why nothing was saved.
            messages.error(request, f"Trigger not saved: {'; '.join(exc.messages)}")

    def delete_model(self, request, obj):
        services.delete_trigger(trigger=obj)


@admin.register(KnowledgeEntry)
class KnowledgeEntryAdmin(admin.ModelAdmin):
    list_display = ["question", "agent", "updated_at"]
    list_select_related = ["agent"]
    list_filter = ["agent__tenant"]
    search_fields = ["question", "answer"]
    raw_id_fields = ["agent"]

    def save_model(self, request, obj, form, change):
        if change:
            services.update_knowledge_entry(entry=obj, question=obj.question, answer=obj.answer, tags=obj.tags)
        else:
            obj.pk = services.create_knowledge_entry(agent=obj.agent, question=obj.question, answer=obj.answer,
                                                     tags=obj.tags).pk

    def delete_model(self, request, obj):
        services.delete_knowledge_entry(entry=obj)


@admin.register(AgentConfig)
class AgentConfigAdmin(admin.ModelAdmin):
    list_display = ["tenant", "llm_base_url", "llm_model", "llm_api_key_env", "updated_at"]
    exclude = ["llm_api_key"]


@admin.register(ConversationState)
class ConversationStateAdmin(admin.ModelAdmin):
    list_display = ["conversation", "tenant", "active_agent", "owner", "automation_paused_until", "last_switch_at"]
    list_select_related = ["tenant", "active_agent", "conversation__contact"]
    list_filter = ["owner", "tenant"]
    readonly_fields = [*(f.name for f in ConversationState._meta.fields), "switch_log"]
    actions = ["hand_off", "resume_automation"]

    @admin.display(description="switch log")
    def switch_log(self, obj):
        # The log per conversation, newest first, with a link to the full filtered list.
        rows = AgentSwitch.objects.filter(conversation_id=obj.conversation_id).select_related(
            "from_agent", "to_agent")[:50]
        link = reverse("admin:agents_agentswitch_changelist") + f"?conversation={obj.conversation_id}"
        return format_html(
            '<table><tr><th>when</th><th>from</th><th>to</th><th>reason</th><th>trigger</th><th>note</th></tr>{}'
            '</table><a href="{}">all switches of this conversation</a>',
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                             ((r.created_at, r.from_agent or "-", r.to_agent or "-", r.reason, r.trigger_id or "-",
                               r.note) for r in rows)),
            link)

    def has_add_permission(self, request):
        return False

    @admin.action(description="Hand off to a person", permissions=["change"])
    def hand_off(self, request, queryset):
        for state in queryset.select_related("conversation"):
            services.handoff(conversation=state.conversation, note=f"admin: {request.user}")
        self.message_user(request, f"{queryset.count()} conversation(s) handed to a person.")

    @admin.action(description="Resume automation", permissions=["change"])
    def resume_automation(self, request, queryset):
        for state in queryset.select_related("conversation"):
            services.resume(conversation=state.conversation)
        self.message_user(request, f"{queryset.count()} conversation(s) back to automation.")


@admin.register(AgentSwitch)
class AgentSwitchAdmin(admin.ModelAdmin):
    list_display = ["pk", "conversation", "from_agent", "to_agent", "reason", "trigger", "created_at"]
    list_select_related = ["from_agent", "to_agent", "trigger", "conversation"]
    list_filter = ["reason", "tenant"]
    search_fields = ["conversation__id"]
    readonly_fields = [f.name for f in AgentSwitch._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(AgentReply)
class AgentReplyAdmin(admin.ModelAdmin):
    list_display = ["pk", "conversation", "agent", "source", "confidence", "cached", "prompt_tokens",
                    "completion_tokens", "created_at"]
    list_select_related = ["agent", "conversation"]
    list_filter = ["source", "cached", "tenant"]
    readonly_fields = [f.name for f in AgentReply._meta.fields]

    def has_add_permission(self, request):
        return False
