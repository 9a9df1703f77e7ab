"""Admin actions offered only where they apply.

A changelist filtered to rows an action cannot touch (retired slots, revoked
keys, deliveries still open) does not offer it: the operator is not invited to
run something that would only report "nothing to do".
"""


class ActionsWhereTheyApply:
    # action name → {changelist filter parameter: values under which the action does not apply}
    actions_not_applying: dict[str, dict[str, set[str]]] = {}

    def get_actions(self, request):
        actions = super().get_actions(request)
        for name, filters in self.actions_not_applying.items():
            if any(request.GET.get(param) in values for param, values in filters.items()):
                actions.pop(name, None)
        return actions
