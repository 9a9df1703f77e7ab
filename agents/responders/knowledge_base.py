"""The knowledge-base responder: BM25 (rank-bm25) over an agent's entries.

Fully offline. BM25 scores have no fixed scale (they grow with the query and
the corpus), so the confidence compared with the threshold is relative: the
best entry's score for the contact's words divided by the score that entry
gets for its own question. 1.0 means "as good a match as asking the entry's
question"; unrelated words score 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agents.responders import Answer, Context

_TOKEN = re.compile(r"\w+", re.UNICODE)
# Words that say nothing about which entry is meant; kept short on purpose.
STOPWORDS = frozenset("""
a an and are as at be but by can could do does for from have how i if in is it me my of on or our please
should so that the this to us was we what when where which who why will with would you your hi hello hey
""".split())


def tokens(text: str) -> list[str]:
    out = []
    for word in _TOKEN.findall((text or "").casefold()):
        if word in STOPWORDS:
            continue
        # A light plural fold ("hours" ~ "hour") is enough for short FAQ entries.
        if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        out.append(word)
    return out


@dataclass
class Entry:
    id: int
    question: str
    answer: str
    tags: list[str]

    def document(self) -> list[str]:
        # The question and tags are what a contact asks; the answer adds its vocabulary once.
        tag_text = " ".join(self.tags)
        return tokens(self.question) * 2 + tokens(tag_text) * 2 + tokens(self.answer)


@dataclass
class Match:
    entry: Entry
    confidence: float


class Index:
    """An agent's entries compiled for BM25 once, queried for many contacts.

    Built per agent version (agents.caches keeps one per process): compiling
    the corpus and each entry's own-question score is the part that does not
    depend on what the contact asked.
    """

    def __init__(self, entries: list[Entry]):
        self.entries = entries
        # BM25Plus with delta 0 is Okapi BM25 with a never-negative idf, log((N+1)/n): plain
        # Okapi gives words found in over half the entries a negative weight, which in a small
        # knowledge base (one to three entries) makes every match score zero.
        # Imported here: rank-bm25 brings numpy (~15 MB), which only processes that answer need.
        from rank_bm25 import BM25Plus

        self._bm25 = BM25Plus([entry.document() or ["_"] for entry in entries], delta=0) if entries else None
        self._own: dict[int, float] = {}

    def _own_score(self, i: int, fallback_query: list[str]) -> float:
        question = tokens(self.entries[i].question)
        if not question:
            return self._bm25.get_scores(fallback_query)[i]
        if i not in self._own:
            self._own[i] = float(self._bm25.get_scores(question)[i])
        return self._own[i]

    def best_match(self, text: str) -> Match | None:
        query = tokens(text)
        if self._bm25 is None or not query:
            return None
        scores = self._bm25.get_scores(query)
        best = max(range(len(self.entries)), key=lambda i: scores[i])
        if scores[best] <= 0:
            return None
        own = self._own_score(best, query)
        confidence = float(scores[best] / own) if own > 0 else 0.0
        return Match(entry=self.entries[best], confidence=min(1.0, round(confidence, 4)))


def best_match(entries: list[Entry], text: str) -> Match | None:
    return Index(entries).best_match(text)


def answer(*, index: Index, context: Context, threshold: float, fallback_text: str,
           handoff_on_low_confidence: bool) -> Answer:
    match = index.best_match(" ".join(context.turn))
    if match is not None and match.confidence >= threshold:
        return Answer(text=match.entry.answer, source="knowledge_base", confidence=match.confidence)
    return Answer(text=fallback_text, source="fallback", confidence=match.confidence if match else 0.0,
                  handoff=handoff_on_low_confidence)
