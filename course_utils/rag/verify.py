"""Claim verification that works on a CPU: select rationale sentences, then predict the label.

SciFact's own task (Wadden et al., EMNLP 2020) is a pipeline: retrieve -> select the rationale
sentences -> predict SUPPORT / CONTRADICT / NOT ENOUGH INFO. Their baseline fine-tunes RoBERTa on
GPUs; here a logistic regression reads sentence-embedding features of each (claim, sentence) pair,
trained in seconds on SciFact's *train* rationales:

    pair_features(u, v) = [u, v, |u - v|, u * v]         (u: claim vector, v: sentence vector)

the classic features of sentence-pair classifiers (Conneau et al., "Supervised learning of
universal sentence representations", EMNLP 2017). Training pairs (`rationale_pairs`): every
rationale sentence with its claim's label, and `nei_per_doc` other sentences of each cited
abstract labelled NOT ENOUGH INFO (for claims without evidence, any sentence of their cited
abstracts). At claim level (`verify_claim`), the retrieved sentences whose P(not NEI) reaches a
threshold are the selected rationales (at most `max_rationales`, best first); the label is the
one of SUPPORT / CONTRADICT with more probability summed over them, NOT ENOUGH INFO if none is
selected.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from course_utils.rag.labels import LABELS

__all__ = ["pair_features", "rationale_pairs", "SentenceVerifier", "verify_claim"]


def pair_features(claim_vecs, sentence_vecs) -> np.ndarray:
    """[u, v, |u - v|, u * v] row by row: float32 (n, 4d) from two float arrays (n, d).

    >>> pair_features(np.ones((1, 2)), np.zeros((1, 2))).tolist()
    [[1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0]]
    """
    u, v = np.asarray(claim_vecs, np.float32), np.asarray(sentence_vecs, np.float32)
    if u.ndim != 2 or u.shape != v.shape:
        raise ValueError(f"claim and sentence vectors must be two arrays of the same shape (n, d), "
                         f"got {u.shape} and {v.shape}; pair claim i with sentence i")
    return np.hstack([u, v, np.abs(u - v), u * v])


def rationale_pairs(claims: Sequence[Mapping], abstracts: Mapping[str, Sequence[str]],
                   nei_per_doc: int = 2, seed: int = 0) -> list[dict]:
    """(claim, sentence, label) pairs from SciFact claims in the original format.

    claims: rows with "claim", "evidence" ({doc_id: [{"sentences", "label"}]}) and
    "cited_doc_ids"; abstracts: {doc_id: [sentence, ...]}. Returns [{"claim", "sentence",
    "label", "claim_id", "doc_id", "index"}], rationales first within each abstract.
    >>> c = {"id": 1, "claim": "X cures Y.", "cited_doc_ids": [7],
    ...      "evidence": {"7": [{"sentences": [1], "label": "SUPPORT"}]}}
    >>> [(p["index"], p["label"]) for p in rationale_pairs([c], {"7": ["a", "b", "c"]}, nei_per_doc=1)]
    [(1, 'SUPPORT'), (0, 'NOT ENOUGH INFO')]
    """
    if isinstance(nei_per_doc, bool) or not isinstance(nei_per_doc, int) or nei_per_doc < 0:
        raise ValueError(f"nei_per_doc must be a whole number >= 0, got {nei_per_doc!r}")
    rng = np.random.default_rng(seed)
    pairs = []
    for claim in claims:
        evidence = {str(d): r for d, r in claim["evidence"].items()}
        for doc in map(str, claim["cited_doc_ids"]):
            if doc not in abstracts:
                raise KeyError(f"claim {claim.get('id')} cites abstract {doc}, which is not in "
                               "`abstracts`; pass the whole SciFact corpus")
            rationale = {i: r["label"] for r in evidence.get(doc, []) for i in r["sentences"]}
            others = [i for i in range(len(abstracts[doc])) if i not in rationale]
            picked = rng.permutation(others)[:nei_per_doc] if others else []
            for i, label in [*sorted(rationale.items()), *((int(i), LABELS[2]) for i in picked)]:
                pairs.append({"claim": claim["claim"], "sentence": abstracts[doc][i], "label": label,
                              "claim_id": claim.get("id"), "doc_id": doc, "index": int(i)})
    return pairs


class SentenceVerifier:
    """Logistic regression on `pair_features`: P(label | claim, sentence) for the three LABELS.

    C: inverse regularisation strength; class_weight None keeps the labels' shares of the
    training pairs (NOT ENOUGH INFO outnumbers the others, as among retrieved sentences), while
    "balanced" reweights them to equal total weight -- which makes most retrieved sentences look
    like evidence when claims are verified (`verify_claim`).
    >>> rng = np.random.default_rng(0); u = rng.normal(size=(60, 4)); v = rng.normal(size=(60, 4))
    >>> y = [LABELS[i % 3] for i in range(60)]
    >>> SentenceVerifier(C=1.0).fit(u, v, y).predict_proba(u[:2], v[:2]).shape
    (2, 3)
    """

    def __init__(self, C: float = 0.1, class_weight: str | None = None, max_iter: int = 2000):
        self.C, self.class_weight, self.max_iter = C, class_weight, max_iter
        self.model = None

    def fit(self, claim_vecs, sentence_vecs, labels: Sequence[str]) -> "SentenceVerifier":
        """Train on pairs (claim_vecs[i], sentence_vecs[i]) with labels[i] in LABELS."""
        from sklearn.linear_model import LogisticRegression

        unknown = set(labels) - set(LABELS)
        if unknown:
            raise ValueError(f"unknown labels {sorted(unknown)}; expected {list(LABELS)}")
        if len(set(labels)) < 2:
            raise ValueError("need pairs of at least two labels to train a classifier")
        X = pair_features(claim_vecs, sentence_vecs)
        if len(X) != len(labels):
            raise ValueError(f"{len(X)} pairs but {len(labels)} labels")
        self.model = LogisticRegression(C=self.C, class_weight=self.class_weight,
                                        max_iter=self.max_iter).fit(X, list(labels))
        return self

    def predict_proba(self, claim_vecs, sentence_vecs) -> np.ndarray:
        """float (n, 3): P(SUPPORT), P(CONTRADICT), P(NOT ENOUGH INFO) for each pair."""
        if self.model is None:
            raise RuntimeError("the verifier is not trained yet: call fit(claim_vecs, sentence_vecs, labels)")
        proba = self.model.predict_proba(pair_features(claim_vecs, sentence_vecs))
        out = np.zeros((len(proba), len(LABELS)))
        for j, label in enumerate(self.model.classes_):
            out[:, LABELS.index(label)] = proba[:, j]
        return out


def verify_claim(probs, threshold: float = 0.5, max_rationales: int = 3) -> dict:
    """Claim-level verdict from the (n, 3) probabilities of its n retrieved sentences.

    Returns {"label", "rationales": selected row indices (best first), "evidence_score": the
    highest P(not NEI)}.
    >>> verify_claim([[0.1, 0.1, 0.8], [0.2, 0.7, 0.1]])
    {'label': 'CONTRADICT', 'rationales': [1], 'evidence_score': 0.9}
    """
    p = np.asarray(probs, float).reshape(-1, len(LABELS))
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold must lie in [0, 1], got {threshold!r}")
    evidence = 1 - p[:, 2]
    order = np.argsort(-evidence, kind="stable")
    chosen = [int(i) for i in order[:max_rationales] if evidence[i] >= threshold]
    if not chosen:
        label = LABELS[2]
    else:
        label = LABELS[0] if p[chosen, 0].sum() >= p[chosen, 1].sum() else LABELS[1]
    return {"label": label, "rationales": chosen,
            "evidence_score": round(float(evidence.max()), 6) if len(p) else 0.0}
