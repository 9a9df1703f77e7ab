"""Trigger matching: compile a tenant's triggers once, evaluate them per inbound message.

Pure functions over plain specs (dicts), so a compiled set can be cached in
process and its specs in Redis (agents.caches). Nothing here touches the
database.

Tenant patterns are hostile until proven otherwise: they run on the `regex`
package with a time limit (the stdlib's `re` cannot be interrupted), a pattern
that is pathological on inputs we can guess is refused when saved
(`check_pattern_is_bounded`), and one that times out anyway is reported to the
caller, which disables it (agents.services.routing).

Precedence when several triggers fire: the highest `priority`; on a tie,
finish > hand-off > keyword/regex > first message > office hours (the more
deliberate the contact's words, the stronger); then the older trigger.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import regex

KIND_RANK = {"finish": 0, "handoff": 1, "keyword": 2, "regex": 2, "first_message": 3, "office_hours": 4}
MAX_TEXT = 4096  # the time limit bounds the work; this bounds what a pattern may hold on to
DEFAULT_PATTERN_TIMEOUT = 0.05  # seconds; callers pass settings.AGENTS_PATTERN_TIMEOUT_MS
_WORDS = re.compile(r"\w+", re.UNICODE)
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class TriggerSpecError(ValueError):
    """A trigger definition that cannot work; the message is meant for the tenant."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


def normalise_words(text: str, *, case_sensitive: bool = False) -> str:
    """Words only, single-spaced: "  Hi,  AGENT! " → "hi agent"."""
    words = _WORDS.findall(text or "")
    joined = " ".join(words)
    return joined if case_sensitive else joined.casefold()


def compile_pattern(pattern: str, *, case_sensitive: bool) -> regex.Pattern:
    if not pattern:
        raise TriggerSpecError("pattern", "A regex trigger needs a pattern.")
    try:
        # Tenants write Python's re syntax (docs/agents.md): the stdlib judges it and words the
        # error; compiling runs nothing of the pattern. It then runs on `regex` (VERSION0 is
        # re's syntax), which can be stopped.
        re.compile(pattern)
        return regex.compile(pattern, regex.VERSION0 | (0 if case_sensitive else regex.IGNORECASE))
    except (re.error, regex.error) as exc:
        where = f" at position {exc.pos}" if exc.pos is not None else ""
        raise TriggerSpecError("pattern", f"Invalid regular expression {pattern!r}: {exc.msg}{where}.") from None


# Repeats that can match a long run: *, +, {n,} and counts from here up.
_LONG_REPEAT = 10
_COUNT = re.compile(r"\{(\d*)(,?)(\d*)\}")


def _repeat_at(pattern: str, i: int) -> tuple[int, bool]:
    """(length of the quantifier at i, whether it repeats unboundedly); (0, False) if none.
    Possessive (`a++`) and atomic forms never backtrack, so they do not count."""
    if i >= len(pattern):
        return 0, False
    length, long = 0, False
    if pattern[i] in "*+":
        length, long = 1, True
    elif pattern[i] == "?":
        length = 1
    elif pattern[i] == "{" and (count := _COUNT.match(pattern, i)) and (count.group(1) or count.group(3)):
        low, comma, high = count.groups()
        length = count.end() - i
        long = bool(comma) and (not high or int(high) >= _LONG_REPEAT) or (not comma and int(low) >= _LONG_REPEAT)
    if not length:
        return 0, False
    if pattern[i + length:i + length + 1] == "+":
        return length + 1, False
    if pattern[i + length:i + length + 1] == "?":
        length += 1  # lazy: backtracks all the same
    return length, long


def _nested_repeat(pattern: str) -> str | None:
    """The first group that repeats unboundedly around something that also does: `(a+)+`, `(\\w*\\s?)*`.

    Such a group can split one run of text in exponentially many ways, and a
    backtracking engine tries them all when the match fails. A heuristic on the
    text (no parse tree needed), erring towards refusing: the tenant is told why.
    """
    stack: list[tuple[int, bool, bool]] = []  # (group start, holds a long repeat, atomic)
    holds_long = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            length, long = _repeat_at(pattern, i)
            holds_long = holds_long or long
            i += length
            continue
        if char == "[":
            i += 1
            if pattern[i:i + 1] == "^":
                i += 1
            if pattern[i:i + 1] == "]":
                i += 1
            while i < len(pattern) and pattern[i] != "]":
                i += 2 if pattern[i] == "\\" else 1
            i += 1
            length, long = _repeat_at(pattern, i)
            holds_long = holds_long or long
            i += length
            continue
        if char == "(":
            stack.append((i, holds_long, pattern.startswith("(?>", i)))
            holds_long = False
            i += 1
            continue
        if char == ")" and stack:
            start, outer_long, atomic = stack.pop()
            length, long = _repeat_at(pattern, i + 1)
            if long and holds_long and not atomic:
                return pattern[start:i + 1 + length]
            holds_long = outer_long or holds_long or long
            i += 1 + length
            continue
        length, long = _repeat_at(pattern, i + 1)
        holds_long = holds_long or long
        i += 1 + length
    return None


def _adversarial_inputs(pattern: str) -> Iterator[str]:
    """Long runs of what the pattern itself matches, ending in what it does not: the inputs
    on which a backtracking pattern fails slowest."""
    letters = [c for c in dict.fromkeys(pattern) if c.isalnum() or c == " "][:6]
    for char in dict.fromkeys([*letters, "a", "0", " "]):
        for length in (40, MAX_TEXT - 1):
            yield char * length + "!"
            yield char * length + "\x00"


def check_pattern_is_bounded(pattern: str, *, case_sensitive: bool, timeout: float) -> None:
    """Refuse a pattern that can take exponential time, where that can be seen before it runs.

    Two checks: nested unbounded repeats in the text of the pattern, then a trial
    against adversarial inputs under the same time limit routing uses. What
    passes both and still times out on a real message is disabled then.
    """
    compiled = compile_pattern(pattern, case_sensitive=case_sensitive)
    nested = _nested_repeat(pattern)
    if nested:
        raise TriggerSpecError(
            "pattern", f"Refused: {nested!r} repeats something that itself repeats (nested quantifiers), which "
                       "can take exponential time on a message that almost matches. Repeat once, e.g. (a+)+ → a+, "
                       "or use a possessive quantifier (a++) or an atomic group (?>...).")
    for text in _adversarial_inputs(pattern):
        try:
            compiled.search(text, timeout=timeout)
        except TimeoutError:
            sample = text[:12] + ("…" if len(text) > 12 else "")
            raise TriggerSpecError(
                "pattern", f"Refused: the pattern takes longer than {timeout * 1000:.0f} ms on a message like "
                           f"{sample!r} ({len(text)} characters): catastrophic backtracking. Simplify it.") from None


def _parse_hhmm(value: object, field_name: str) -> time:
    match = _HHMM.match(str(value or ""))
    if not match:
        raise TriggerSpecError("office_hours", f"{field_name} must be HH:MM (24 h), got {value!r}.")
    return time(int(match.group(1)), int(match.group(2)))


def parse_office_hours(ranges: object) -> list[tuple[frozenset[int], time, time]]:
    if not isinstance(ranges, list) or not ranges:
        raise TriggerSpecError("office_hours",
                               'Office hours need at least one range, e.g. [{"days": [0,1,2,3,4], '
                               '"start": "09:00", "end": "17:00"}] (Monday = 0).')
    parsed = []
    for item in ranges:
        if not isinstance(item, dict):
            raise TriggerSpecError("office_hours", "Each office-hours range is an object with days, start and end.")
        days = item.get("days")
        if not isinstance(days, list) or not days or not all(isinstance(d, int) and 0 <= d <= 6 for d in days):
            raise TriggerSpecError("office_hours", "days must be a non-empty list of weekdays 0-6 (Monday = 0).")
        start, end = _parse_hhmm(item.get("start"), "start"), _parse_hhmm(item.get("end"), "end")
        if start == end:
            raise TriggerSpecError("office_hours", "An office-hours range must not start and end at the same time.")
        parsed.append((frozenset(days), start, end))
    return parsed


def validate_time_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise TriggerSpecError("time_zone", f"Unknown time zone {name!r}.") from None


def in_office_hours(ranges: list[tuple[frozenset[int], time, time]], local: datetime) -> bool:
    day, now = local.weekday(), local.time().replace(tzinfo=None)
    for days, start, end in ranges:
        if start < end:
            if day in days and start <= now < end:
                return True
        # An overnight range (22:00-06:00) belongs to the day it starts on.
        elif (day in days and now >= start) or ((day - 1) % 7 in days and now < end):
            return True
    return False


@dataclass
class CompiledTrigger:
    id: int
    kind: str
    agent_id: int | None
    priority: int
    keywords: list[str] = field(default_factory=list)
    match: str = "contains"
    case_sensitive: bool = False
    regex: regex.Pattern | None = None
    hours: list = field(default_factory=list)
    outside_hours: bool = False

    @property
    def sort_key(self) -> tuple:
        return (-self.priority, KIND_RANK[self.kind], self.id)

    def _keyword_hit(self, text: str) -> bool:
        words = normalise_words(text, case_sensitive=self.case_sensitive)
        for keyword in self.keywords:
            if self.match == "equals" and words == keyword:
                return True
            # Whole words, so "agent" does not fire on "management".
            if self.match == "contains" and f" {keyword} " in f" {words} ":
                return True
            if self.match == "starts_with" and words.startswith(keyword):
                return True
            if self.match == "ends_with" and words.endswith(keyword):
                return True
        return False

    def fires(self, *, text: str, is_first: bool, local_now: datetime,
              timeout: float = DEFAULT_PATTERN_TIMEOUT) -> bool:
        """Raises TimeoutError when a regex runs past `timeout` seconds."""
        if self.kind in ("keyword", "handoff", "finish"):
            return self._keyword_hit(text)
        if self.kind == "regex":
            return bool(self.regex and self.regex.search((text or "")[:MAX_TEXT], timeout=timeout))
        if self.kind == "first_message":
            return is_first
        if self.kind == "office_hours":
            return in_office_hours(self.hours, local_now) != self.outside_hours
        return False


def compile_spec(spec: dict) -> CompiledTrigger:
    """Compile one spec (see agents.selectors.trigger_specs); raises TriggerSpecError."""
    kind = spec["kind"]
    if kind not in KIND_RANK:
        raise TriggerSpecError("kind", f"Unknown trigger kind {kind!r}.")
    case_sensitive = bool(spec.get("case_sensitive"))
    compiled = CompiledTrigger(id=spec.get("id") or 0, kind=kind, agent_id=spec.get("agent_id"),
                               priority=int(spec.get("priority") or 0), match=spec.get("match") or "contains",
                               case_sensitive=case_sensitive, outside_hours=bool(spec.get("outside_hours")))
    if kind in ("keyword", "handoff", "finish"):
        if compiled.match not in ("equals", "contains", "starts_with", "ends_with"):
            raise TriggerSpecError("match", "match must be one of equals, contains, starts_with, ends_with.")
        keywords = [normalise_words(k, case_sensitive=case_sensitive) for k in spec.get("keywords") or []
                    if isinstance(k, str)]
        compiled.keywords = [k for k in keywords if k]
        if not compiled.keywords:
            raise TriggerSpecError("keywords", "A keyword trigger needs at least one keyword with a letter or digit.")
    elif kind == "regex":
        compiled.regex = compile_pattern(spec.get("pattern") or "", case_sensitive=case_sensitive)
    elif kind == "office_hours":
        compiled.hours = parse_office_hours(spec.get("office_hours"))
    return compiled


@dataclass
class CompiledTriggers:
    """A tenant's active triggers, best first, plus what evaluation needs to know about its agents."""

    triggers: list[CompiledTrigger]
    default_agent_id: int | None
    human_agent_id: int | None
    time_zone: str

    @classmethod
    def from_specs(cls, data: dict) -> "CompiledTriggers":
        compiled = []
        for spec in data["triggers"]:
            try:
                compiled.append(compile_spec(spec))
            except TriggerSpecError:
                # Refused at write time; a row that still fails (edited by hand) must not stop the others.
                continue
        compiled.sort(key=lambda t: t.sort_key)
        return cls(triggers=compiled, default_agent_id=data.get("default_agent_id"),
                   human_agent_id=data.get("human_agent_id"), time_zone=data.get("time_zone") or "UTC")

    def evaluate(self, *, text: str, is_first: bool, now: datetime, timeout: float = DEFAULT_PATTERN_TIMEOUT,
                 timed_out: set[int] | None = None) -> CompiledTrigger | None:
        """The winning trigger for one inbound message, or None.

        A pattern that runs past `timeout` does not fire; its id is added to
        `timed_out` (pass the same set for every message of a run: a trigger in
        it is skipped, not given another `timeout` to burn) and the others are
        evaluated as if it did not exist.
        """
        timed_out = set() if timed_out is None else timed_out
        local_now = self.local_time(now)
        for trigger in self.triggers:  # sorted by precedence: the first that fires wins
            if trigger.id in timed_out:
                continue
            try:
                if trigger.fires(text=text, is_first=is_first, local_now=local_now, timeout=timeout):
                    return trigger
            except TimeoutError:
                timed_out.add(trigger.id)
        return None

    def local_time(self, now: datetime) -> datetime:
        try:
            return now.astimezone(ZoneInfo(self.time_zone))
        except (ZoneInfoNotFoundError, ValueError):
            return now  # a bad zone is refused at write time; UTC beats failing every message

    def by_id(self, trigger_id: int | None) -> CompiledTrigger | None:
        return next((t for t in self.triggers if t.id == trigger_id), None)

    def target_of(self, trigger: CompiledTrigger) -> int | None:
        """The agent a fired trigger hands the conversation to."""
        if trigger.kind == "finish":
            return self.default_agent_id
        if trigger.kind == "handoff":
            return trigger.agent_id or self.human_agent_id
        return trigger.agent_id
