"""Measuring RAG on SciFact: did retrieval find the evidence, are citations right, is the label right.

SciFact (Wadden et al. 2020) marks, for each claim that an abstract supports or contradicts, the
abstract's evidence sentences (rationales). With documents rebuilt from their sentences
(`chunking.join_sentences`), every evidence sentence is a character span (doc_id, start, end).

- Evidence recall@k: the share of a claim's evidence sentences that lie in the top-k retrieved
  chunks -- a sentence counts as found when at least `min_share` (default half) of its
  characters are inside one retrieved chunk of its document -- averaged over claims. Bigger
  chunks find more at the same k but put more tokens into the prompt: report both, and the
  recall *within a token budget* (the best-ranked chunks that fit in b tokens together), which
  compares chunkers at equal cost.
- Citation correctness: a cited source is correct when it contains part of an evidence sentence.
- Claim verification: the claim-level label (SUPPORT / CONTRADICT from the evidence, NOT ENOUGH
  INFO when a claim has none), scored by accuracy and macro-F1 (mean of per-label F1), and by the
  recall of each label (the same meaning for every system, whatever labels it can predict).
- Is system A really better than system B on the same claims? `mcnemar` (exact test on the
  claims exactly one of them gets right; McNemar 1947) for accuracy, and `paired_bootstrap`
  (claims resampled with replacement; Efron & Tibshirani 1993) for macro-F1.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from course_utils.rag.pipeline import LABELS

__all__ = ["claim_label", "evidence_spans", "sentence_found", "evidence_recall",
           "within_budget", "recall_table", "cited_evidence", "verification_scores", "confusion",
           "mcnemar", "paired_bootstrap"]

Evidence = tuple[str, int, int]  # (doc_id, start, end) of one evidence sentence


def claim_label(claim: Mapping) -> str:
    """SUPPORT or CONTRADICT (the label of its evidence) or NOT ENOUGH INFO (no evidence).

    >>> claim_label({"evidence": {}}), claim_label({"evidence": {"9": [{"label": "SUPPORT"}]}})
    ('NOT ENOUGH INFO', 'SUPPORT')
    """
    labels = {e["label"] for rationales in claim["evidence"].values() for e in rationales}
    if len(labels) > 1:
        raise ValueError(f"claim {claim.get('id')} has mixed labels {sorted(labels)}")
    return labels.pop() if labels else LABELS[2]


def evidence_spans(claim: Mapping, sentence_spans: Mapping[str, Sequence]) -> list[Evidence]:
    """(doc_id, start, end) of each evidence sentence of a claim (sorted, no repeats).

    sentence_spans: {doc_id: [(start, end) of sentence 0, 1, ...]} from `join_sentences`.
    >>> evidence_spans({"evidence": {"9": [{"sentences": [1]}]}}, {"9": [(0, 5), (6, 12)]})
    [('9', 6, 12)]
    """
    out = set()
    for doc_id, rationales in claim["evidence"].items():
        spans = sentence_spans[str(doc_id)]
        for rationale in rationales:
            out.update((str(doc_id), *spans[i]) for i in rationale["sentences"])
    return sorted(out)


def sentence_found(evidence: Evidence, chunks: Sequence, min_share: float = 0.5) -> bool:
    """Whether one chunk of the evidence sentence's document holds >= min_share of its characters."""
    doc_id, start, end = evidence
    for c in chunks:
        if c.doc_id == doc_id and min(c.end, end) - max(c.start, start) >= min_share * (end - start):
            return True
    return False


def evidence_recall(ranked: Sequence, evidence: Sequence[Evidence], k: int,
                    min_share: float = 0.5) -> float:
    """Share of `evidence` sentences found in the first k chunks of `ranked` (best first).

    >>> from course_utils.rag.chunking import Chunk
    >>> evidence_recall([Chunk("9", 0, 0, 12, "x")], [("9", 6, 12), ("9", 20, 30)], k=1)
    0.5
    """
    if not evidence:
        raise ValueError("this claim has no evidence sentences; evaluate claims with evidence only")
    top = list(ranked)[:k]
    return sum(sentence_found(e, top, min_share) for e in evidence) / len(evidence)


def within_budget(ranked: Sequence, budget: int, count_tokens) -> int:
    """How many chunks of `ranked`, taken in order, fit in `budget` tokens together."""
    used = 0
    for n, chunk in enumerate(ranked):
        used += count_tokens(chunk.text)
        if used > budget:
            return n
    return len(ranked)


def recall_table(rankings: Mapping[str, Mapping], evidence: Mapping[str, Sequence[Evidence]],
                 ks=(1, 3, 5), count_tokens=None, budgets=()) -> pd.DataFrame:
    """One row per system: mean evidence recall@k over claims, mean tokens in the top max(ks),
    and for each budget b, recall within b tokens (the best chunks that fit in b tokens).

    rankings: {system: {claim_id: [chunks, best first]}}; evidence: {claim_id: [spans]} (claims
    without evidence are skipped); count_tokens: text -> int (default: characters / 4).
    """
    count = count_tokens or (lambda text: len(text) / 4)
    rows = {}
    for name, ranked in rankings.items():
        claims = [c for c in evidence if evidence[c] and c in ranked]
        if not claims:
            raise ValueError(f"system {name!r} ranked none of the claims with evidence")
        row = {f"recall@{k}": np.mean([evidence_recall(ranked[c], evidence[c], k) for c in claims])
               for k in ks}
        row[f"tokens@{max(ks)}"] = np.mean([sum(count(ch.text) for ch in ranked[c][:max(ks)])
                                            for c in claims])
        for b in budgets:
            fits = {c: within_budget(ranked[c], b, count) for c in claims}
            row[f"recall in {b} tokens"] = np.mean(
                [evidence_recall(ranked[c], evidence[c], fits[c]) if fits[c] else 0.0 for c in claims])
        row["claims"] = len(claims)
        rows[name] = row
    return pd.DataFrame(rows).T.astype({"claims": int})


def cited_evidence(cited_sources: Sequence[Mapping], evidence: Sequence[Evidence]) -> list[bool]:
    """For each cited source (dicts with doc_id, start, end): does it contain evidence?

    A source is correct when it overlaps an evidence sentence of its document.
    """
    return [any(s["doc_id"] == d and min(s["end"], b) > max(s["start"], a) for d, a, b in evidence)
            for s in cited_sources]


def verification_scores(gold: Sequence[str], predicted: Sequence[str], labels=LABELS) -> dict:
    """{"accuracy", "macro_f1", "n"}: macro-F1 = mean over labels of 2PR / (P + R).

    >>> verification_scores(["SUPPORT", "CONTRADICT"], ["SUPPORT", "SUPPORT"])["accuracy"]
    0.5
    """
    from sklearn.metrics import f1_score

    if len(gold) != len(predicted) or not gold:
        raise ValueError(f"need as many predictions as gold labels (got {len(predicted)} and {len(gold)})")
    unknown = (set(gold) | set(predicted)) - set(labels)
    if unknown:
        raise ValueError(f"unknown labels {sorted(unknown)}; expected {list(labels)}")
    acc = float(np.mean([g == p for g, p in zip(gold, predicted)]))
    f1 = float(f1_score(gold, predicted, labels=list(labels), average="macro", zero_division=0))
    recall = {f"recall {lab}": float(np.mean([p == lab for g, p in zip(gold, predicted) if g == lab]))
              for lab in labels if lab in gold}
    return {"accuracy": acc, "macro_f1": f1, **recall, "n": len(gold)}


def confusion(gold: Sequence[str], predicted: Sequence[str], labels=LABELS) -> pd.DataFrame:
    """Counts: rows = gold label, columns = predicted label."""
    table = pd.DataFrame(0, index=list(labels), columns=list(labels))
    for g, p in zip(gold, predicted):
        table.loc[g, p] += 1
    table.index.name, table.columns.name = "gold", "predicted"
    return table


def mcnemar(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> dict:
    """Exact McNemar test: do A and B differ in accuracy on the same items?

    Only the items exactly one system gets right count: under H0 each is A's with probability
    1/2. Returns {"a_only", "b_only", "p_value"} (two-sided binomial test).
    >>> mcnemar([True] * 12 + [False] * 3, [False] * 12 + [True] * 3)["p_value"] < 0.05
    True
    """
    from scipy.stats import binomtest

    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    if a.shape != b.shape or a.ndim != 1 or not len(a):
        raise ValueError(f"need two equally long 1-D lists of right/wrong, got {a.shape} and {b.shape}")
    a_only, b_only = int(np.sum(a & ~b)), int(np.sum(~a & b))
    p = binomtest(a_only, a_only + b_only, 0.5).pvalue if a_only + b_only else 1.0
    return {"a_only": a_only, "b_only": b_only, "p_value": float(p)}


def paired_bootstrap(gold: Sequence[str], pred_a: Sequence[str], pred_b: Sequence[str],
                     metric: str = "macro_f1", n_resamples: int = 2000, seed: int = 0) -> dict:
    """metric(A) - metric(B) on the same claims, with a bootstrap over claims.

    Returns {"diff", "ci_low", "ci_high" (95 % percentile interval), "p_value": the share of
    resamples where A is not better (one-sided, never below 1 / (n_resamples + 1))}.
    """
    gold, a, b = (np.asarray(x, dtype=object) for x in (gold, pred_a, pred_b))
    if not len(gold) == len(a) == len(b) > 1:
        raise ValueError("gold, pred_a and pred_b must be equally long, with at least 2 claims")
    score = lambda idx, p: verification_scores(list(gold[idx]), list(p[idx]))[metric]  # noqa: E731
    every = np.arange(len(gold))
    rng = np.random.default_rng(seed)
    diffs = np.empty(n_resamples)
    for r in range(n_resamples):
        idx = rng.integers(0, len(gold), len(gold))
        diffs[r] = score(idx, a) - score(idx, b)
    low, high = np.percentile(diffs, [2.5, 97.5])
    return {"diff": score(every, a) - score(every, b), "ci_low": float(low), "ci_high": float(high),
            "p_value": float((1 + np.sum(diffs <= 0)) / (1 + n_resamples))}
