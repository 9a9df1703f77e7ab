"""Admin for agents. Saves go through agents.services, so versions are bumped and the
tenant's trigger cache is invalidated exactly as through the API."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.forms.models import InlineForeignKeyField
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from agents import services
from agents.models import Agent, AgentConfig, AgentReply, AgentSwitch, ConversationState, KnowledgeEntry, Trigger
from waplatform.admin_actions import ActionsWhereTheyApply
from waplatform.admin_display import clipped


HISTORY_ROWS = 50  # newest rows a change page shows; the link goes to the full filtered list


def _fields_of(obj, names):
    return {name: getattr(obj, name) for name in names}


class ServiceCheckedForm(forms.ModelForm):
    """Runs the service's own checks on the edited object, so a refusal shows on the form
    instead of failing inside save_model."""

    @staticmethod
    def service_check(instance):
        raise NotImplementedError

    def _post_clean(self):
        super()._post_clean()
        if self._errors:
            return  # the object may be half-built (no tenant, no agent): the form already says why
        try:
            self.service_check(self.instance)
        except ValidationError as exc:
            for field, errors in exc.update_error_dict({}).items():
                if isinstance(self.fields.get(field), InlineForeignKeyField):
                    continue  # an inline's parent may not exist yet; the formset sets it on save (as Django does)
                self.add_error(field if field in self.fields else None, errors)


class AgentForm(ServiceCheckedForm):
    @staticmethod
    def service_check(instance):
        services.check_agent(agent=instance)

    def _get_validation_exclusions(self):
        # Without this the one-default constraint refuses the form: ticking "default" on
        # another agent is how the flag moves (the service unsets the old one in the same
        # transaction, and the constraint still guards the table).
        return {*super()._get_validation_exclusions(), "is_default"}


class TriggerForm(ServiceCheckedForm):
    @staticmethod
    def service_check(instance):
        services.check_trigger(trigger=instance)


class KnowledgeEntryForm(ServiceCheckedForm):
    @staticmethod
    def service_check(instance):
        services.check_knowledge_entry(entry=instance)


class KnowledgeEntryInline(admin.TabularInline):
    model = KnowledgeEntry
    form = KnowledgeEntryForm
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


class TenantFixedOnChange:
    """The services move nothing between tenants (or agents): the owner is chosen once, on add."""

    fixed_on_change = ("tenant",)

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return fields + [f for f in self.fixed_on_change if f not in fields] if obj is not None else fields


@admin.register(Agent)
class AgentAdmin(TenantFixedOnChange, admin.ModelAdmin):
    form = AgentForm
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
        # commit=False writes nothing: each row goes through its service instead.
        formset.save(commit=False)
        agent = form.instance
        for obj in formset.deleted_objects:
            if isinstance(obj, Trigger):
                services.delete_trigger(trigger=obj)
            else:
                services.delete_knowledge_entry(entry=obj)
        for obj in formset.new_objects:
            if isinstance(obj, Trigger):
                fields = _fields_of(obj, services.TRIGGER_FIELDS - {"agent", "kind"})
                services.create_trigger(tenant=agent.tenant, kind=obj.kind, agent=agent, **fields)
            else:
                services.create_knowledge_entry(agent=agent, question=obj.question, answer=obj.answer, tags=obj.tags)
        for obj, _ in formset.changed_objects:
            if isinstance(obj, Trigger):
                services.update_trigger(trigger=obj, **_fields_of(obj, services.TRIGGER_FIELDS))
            else:
                services.update_knowledge_entry(entry=obj, question=obj.question, answer=obj.answer, tags=obj.tags)

    def delete_model(self, request, obj):
        services.delete_agent(agent=obj)

    def delete_queryset(self, request, queryset):
        for agent in queryset:
            services.delete_agent(agent=agent)


@admin.register(Trigger)
class TriggerAdmin(TenantFixedOnChange, admin.ModelAdmin):
    form = TriggerForm
    list_display = ["pk", "tenant", "agent", "kind", clipped("keywords", 40), "match", clipped("pattern", 30),
                    "priority", "active", clipped("disabled_reason", 40)]
    list_select_related = ["tenant", "agent"]
    list_filter = ["kind", "active", "tenant"]
    raw_id_fields = ["agent"]
    # Written by the platform when a pattern runs past its time limit, never by hand.
    readonly_fields = ["disabled_reason", "disabled_at"]

    def save_model(self, request, obj, form, change):
        fields = _fields_of(obj, services.TRIGGER_FIELDS)
        if change:
            services.update_trigger(trigger=obj, **fields)
        else:
            fields.pop("kind"), fields.pop("agent")
            obj.pk = services.create_trigger(tenant=obj.tenant, kind=obj.kind, agent=obj.agent, **fields).pk

    def delete_model(self, request, obj):
        services.delete_trigger(trigger=obj)

    def delete_queryset(self, request, queryset):
        for trigger in queryset:
            services.delete_trigger(trigger=trigger)


@admin.register(KnowledgeEntry)
class KnowledgeEntryAdmin(TenantFixedOnChange, admin.ModelAdmin):
    form = KnowledgeEntryForm
    fixed_on_change = ("agent",)
    list_display = [clipped("question", 80), "agent", "updated_at"]
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

    def delete_queryset(self, request, queryset):
        for entry in queryset:
            services.delete_knowledge_entry(entry=entry)


@admin.register(AgentConfig)
class AgentConfigAdmin(TenantFixedOnChange, admin.ModelAdmin):
    list_display = ["tenant", clipped("llm_base_url", 40, description="LLM base URL"), clipped("llm_model", 30),
                    clipped("llm_api_key_env", 30, description="LLM API key env"), "updated_at"]
    list_select_related = ["tenant"]
    exclude = ["llm_api_key"]

    def save_model(self, request, obj, form, change):
        # Only what the form shows: the stored key (not on the form) stays as it is.
        fields = {name: form.cleaned_data[name] for name in services.CONFIG_FIELDS if name in form.cleaned_data}
        obj.pk = services.update_agent_config(tenant=obj.tenant, **fields).pk

    def delete_model(self, request, obj):
        services.delete_agent_config(tenant=obj.tenant)

    def delete_queryset(self, request, queryset):
        for config in queryset.select_related("tenant"):
            services.delete_agent_config(tenant=config.tenant)


@admin.register(ConversationState)
class ConversationStateAdmin(ActionsWhereTheyApply, admin.ModelAdmin):
    # Resume stays offered for automated conversations too: it also lifts a pause after a manual reply.
    actions_not_applying = {"hand_off": {"owner__exact": {ConversationState.Owner.HUMAN}}}
    list_display = ["conversation", "tenant", "active_agent", "owner", "automation_paused_until", "last_switch_at"]
    list_select_related = ["tenant", "active_agent", "conversation__contact"]
    list_filter = ["owner", "tenant"]
    readonly_fields = [*(f.name for f in ConversationState._meta.fields), "switch_log"]
    actions = ["hand_off", "resume_automation"]

    @admin.display(description="switch log")
    def switch_log(self, obj):
        # The log per conversation, newest first, with a link to the full filtered list.
        rows = AgentSwitch.objects.filter(conversation_id=obj.conversation_id).select_related(
            "from_agent", "to_agent")[:HISTORY_ROWS]
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
        states = list(queryset.exclude(owner=ConversationState.Owner.HUMAN).select_related("conversation"))
        for state in states:
            services.handoff(conversation=state.conversation, note=f"admin: {request.user}")
        held = len(queryset) - len(states)
        self.message_user(request, f"{len(states)} conversation(s) handed to a person"
                          + (f"; {held} already with a person" if held else "") + ".")

    @admin.action(description="Resume automation", permissions=["change"])
    def resume_automation(self, request, queryset):
        for state in queryset.select_related("conversation"):
            services.resume(conversation=state.conversation)
        self.message_user(request, f"{queryset.count()} conversation(s) back to automation.")


@admin.register(AgentSwitch)
class AgentSwitchAdmin(admin.ModelAdmin):
    list_display = ["pk", "conversation", "from_agent", "to_agent", "reason", "trigger", "created_at"]
    # The conversation's and trigger's names show their contact and agent.
    list_select_related = ["from_agent", "to_agent", "trigger__agent", "conversation__contact"]
    list_filter = ["reason", "tenant"]
    search_fields = ["conversation__id"]
    readonly_fields = [f.name for f in AgentSwitch._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(AgentReply)
class AgentReplyAdmin(admin.ModelAdmin):
    list_display = ["pk", "conversation", "agent", "source", "confidence", "cached", "prompt_tokens",
                    "completion_tokens", "created_at"]
    list_select_related = ["agent", "conversation__contact"]
    list_filter = ["source", "cached", "tenant"]
    readonly_fields = [f.name for f in AgentReply._meta.fields]

    def has_add_permission(self, request):
        return False
