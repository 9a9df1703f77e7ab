"""The API's JSON parser: DRF's, with the depth and size limits of waplatform.json_limits."""

import io

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser

from waplatform.json_limits import JsonTooDeep, JsonTooLarge, check_json_limits


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"
    default_detail = "The request body is too large."


class LimitedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read(settings.API_JSON_MAX_BYTES + 1)
        try:
            check_json_limits(raw, max_depth=settings.API_JSON_MAX_DEPTH, max_bytes=settings.API_JSON_MAX_BYTES)
        except JsonTooLarge as exc:
            raise PayloadTooLarge(str(exc)) from None
        except JsonTooDeep as exc:
            raise ParseError(str(exc), code=exc.code) from None
        return super().parse(io.BytesIO(raw), media_type, parser_context)

