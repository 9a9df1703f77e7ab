"""Schema correctness: the error answers every operation can give, in one place.

Views document their success answers; the errors come from shared layers
(authentication, permissions, throttling, parsing, waplatform/api_errors.py),
so they are added here to every operation rather than repeated per view.
"""

ERROR_SCHEMA = {
    "type": "object",
    "description": "Every error answer: a stable `code` to branch on and a `detail` that says how to fix the request.",
    "properties": {
        "code": {"type": "string", "example": "invalid"},
        "detail": {"type": "string", "example": "to: 'to' must be a phone number in international format"},
        "errors": {"description": "400 only: the field-by-field validation errors."},
        "error_id": {"type": "string", "description": "500 only: quote it when reporting; it is in the server log."},
    },
    "required": ["code", "detail"],
}

_ALWAYS = {
    "400": "Invalid input (including JSON nested deeper than API_JSON_MAX_DEPTH); `detail` names the field.",
    "401": "Missing or invalid credentials.",
    "403": "Authenticated, but not allowed (e.g. a suspended tenant).",
    "404": "No such object for this tenant.",
    "409": "Conflicts with the current state (no WhatsApp session, idempotency key reused, ...).",
    "429": "Rate limited; retry after `Retry-After` seconds.",
    "503": "A backing service is briefly unavailable or a queue is full; retry after `Retry-After` seconds.",
}
_WITH_BODY = {
    "413": "The body is larger than API_JSON_MAX_BYTES.",
    "415": "The body's Content-Type is not one the operation accepts.",
}
_RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before retrying."}}


def add_error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"])."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    reference = {"$ref": "#/components/schemas/Error"}
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            errors = dict(_ALWAYS, **(_WITH_BODY if "requestBody" in operation else {}))
            for status, description in errors.items():
                response = {"description": description, "content": {"application/json": {"schema": reference}}}
                if status in ("429", "503"):
                    response["headers"] = _RETRY_AFTER
                operation["responses"].setdefault(status, response)
    return result
