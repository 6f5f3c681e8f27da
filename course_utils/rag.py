"""Retrieval for the RAG rung: a small BM25 index over handbook sections.

Introduced in notebooks/00_decide.ipynb.

Why BM25 and not an embedding model: the handbook is a few thousand words of specific terms
(prices, day counts, product names), which word-overlap scoring finds well; it needs no model,
no download and no GPU, and every score can be explained by hand. An embedding retriever
(e.g. all-MiniLM-L6-v2) helps when questions use different words from the text.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

STOPWORDS = frozenset(
    "a an and are as at be by can do does for from how i if in is it its me my of on or our "
    "the to we what when where which who will with you your".split())


def words(text: str) -> list[str]:
    """Lower-case word tokens without stop words: what BM25 matches on."""
    return [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOPWORDS]


@dataclass
class Hit:
    """One retrieved document and its score."""

    doc: dict
    score: float


class BM25:
    """Okapi BM25 over documents with a 'text' (and optional 'title') field."""

    def __init__(self, docs: list[dict], k1: float = 1.5, b: float = 0.75):
        if not docs:
            raise ValueError("BM25 needs at least one document")
        self.docs, self.k1, self.b = docs, k1, b
        self.terms = [Counter(words(f"{d.get('title', '')} {d['text']}")) for d in docs]
        self.lengths = [sum(t.values()) for t in self.terms]
        self.avg_length = sum(self.lengths) / len(docs)
        df = Counter(term for t in self.terms for term in t)
        n = len(docs)
        self.idf = {term: math.log(1 + (n - k + 0.5) / (k + 0.5)) for term, k in df.items()}

    def score(self, query: str, i: int) -> float:
        """BM25 score of document i for the query."""
        tf, norm = self.terms[i], 1 - self.b + self.b * self.lengths[i] / self.avg_length
        return sum(self.idf.get(w, 0.0) * tf[w] * (self.k1 + 1) / (tf[w] + self.k1 * norm)
                   for w in words(query) if w in tf)

    def search(self, query: str, k: int = 2) -> list[Hit]:
        """The k best documents for the query, best first."""
        scored = [Hit(d, self.score(query, i)) for i, d in enumerate(self.docs)]
        return sorted(scored, key=lambda h: -h.score)[:k]


ANSWER_FROM_EXTRACT = ("Answer the question using the handbook extract. Reply with one short "
                       "sentence that repeats the exact figure or name from the extract.")


def with_context(question: str, hits: list[Hit], instruction: str = ANSWER_FROM_EXTRACT) -> list[dict]:
    """Chat messages that put the retrieved text right before the question (in the user turn)."""
    context = "\n\n".join(f"## {h.doc.get('title', '')}\n{h.doc['text']}" for h in hits)
    return [{"role": "system", "content": instruction},
            {"role": "user", "content": f"Handbook extract:\n{context}\n\nQuestion: {question}"}]
