"""JSON that is too deep or too large is refused before it is parsed.

Python's json module recurses once per nesting level: a few thousand `[` in a
body raise RecursionError, which no view expects (a 500), and every level
below that still costs the serializers a frame. So the depth is measured on
the raw bytes first, without recursion.

Pure Python, no Django: the bridge adapters (pooling/bridges), which the
sandbox imports without Django, use it too.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Only these bytes change the nesting or string state; everything else is skipped by the regex.
_STRUCTURAL = re.compile(rb'["\\\[\]{}]')


class JsonRefused(ValueError):
    code = "invalid_json"


class JsonTooDeep(JsonRefused):
    code = "json_too_deep"


class JsonTooLarge(JsonRefused):
    code = "payload_too_large"


def nesting_depth(raw: bytes, *, stop_above: int | None = None) -> int:
    """The deepest nesting of arrays and objects in `raw`; brackets inside strings do not count.

    Stops counting once `stop_above` is passed. Malformed JSON gets some number;
    the parser that runs next refuses it.
    """
    depth = deepest = 0
    in_string = False
    escaped_at = -1
    for match in _STRUCTURAL.finditer(raw):
        position = match.start()
        if position == escaped_at:
            continue
        char = raw[position]
        if in_string:
            if char == 0x5C:  # backslash: the next byte is escaped, whatever it is
                escaped_at = position + 1
            elif char == 0x22:
                in_string = False
            continue
        if char == 0x22:
            in_string = True
        elif char in (0x5B, 0x7B):
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop_above is not None and deepest > stop_above:
                    return deepest
        elif char in (0x5D, 0x7D):
            depth -= 1
    return deepest


def check_json_limits(raw: bytes, *, max_depth: int, max_bytes: int) -> None:
    if len(raw) > max_bytes:
        raise JsonTooLarge(f"The body is {len(raw)} bytes; at most {max_bytes} are accepted.")
    if nesting_depth(raw, stop_above=max_depth) > max_depth:
        raise JsonTooDeep(f"The JSON nests deeper than {max_depth} levels; send a flatter document.")


def loads_limited(raw: bytes, *, max_depth: int, max_bytes: int) -> Any:
    """json.loads after the limits hold; every refusal is a ValueError (JsonRefused or JSONDecodeError)."""
    check_json_limits(raw, max_depth=max_depth, max_bytes=max_bytes)
    return json.loads(raw)
