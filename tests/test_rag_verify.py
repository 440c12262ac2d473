"""The verification stage: pair features, SciFact training pairs, the label classifier, the
claim-level verdict, and the paired significance tests. Tiny synthetic data, no model loaded."""
import numpy as np
import pytest

from course_utils import rag_eval
from course_utils.rag import LABELS
from course_utils.rag.verify import SentenceVerifier, pair_features, rationale_pairs, verify_claim

CLAIMS = [{"id": 1, "claim": "A cures B.", "cited_doc_ids": [10],
           "evidence": {"10": [{"sentences": [0, 2], "label": "SUPPORT"}]}},
          {"id": 2, "claim": "C harms D.", "cited_doc_ids": [11], "evidence": {}}]
ABSTRACTS = {"10": ["s0", "s1", "s2", "s3"], "11": ["t0", "t1", "t2"]}


def test_pair_features_layout():
    u, v = np.array([[1.0, -2.0]]), np.array([[3.0, 1.0]])
    assert pair_features(u, v).tolist() == [[1, -2, 3, 1, 2, 3, 3, -2]]
    with pytest.raises(ValueError, match="same shape"):
        pair_features(u, np.ones((2, 2)))


def test_rationale_pairs_rationales_and_sampled_nei():
    pairs = rationale_pairs(CLAIMS, ABSTRACTS, nei_per_doc=1, seed=0)
    got = [(p["claim_id"], p["index"], p["label"]) for p in pairs]
    assert got[:2] == [(1, 0, "SUPPORT"), (1, 2, "SUPPORT")]
    assert got[2][2] == got[3][2] == "NOT ENOUGH INFO" and got[2][1] in (1, 3) and got[3][0] == 2
    assert all(ABSTRACTS[p["doc_id"]][p["index"]] == p["sentence"] for p in pairs)
    assert rationale_pairs(CLAIMS, ABSTRACTS, seed=0) == rationale_pairs(CLAIMS, ABSTRACTS, seed=0)
    with pytest.raises(KeyError, match="not in"):
        rationale_pairs(CLAIMS, {"10": ABSTRACTS["10"]})


def test_verifier_learns_a_separable_rule():
    rng = np.random.default_rng(0)
    u = rng.normal(size=(300, 8))
    y = np.array(LABELS)[rng.integers(0, 3, 300)]
    v = u.copy()                          # SUPPORT: the sentence says what the claim says
    v[y == "CONTRADICT"] *= -1            # CONTRADICT: the opposite
    v[y == "NOT ENOUGH INFO"] = rng.normal(size=((y == "NOT ENOUGH INFO").sum(), 8))  # unrelated
    clf = SentenceVerifier(C=10).fit(u[:200], v[:200], list(y[:200]))
    pred = np.array(LABELS)[clf.predict_proba(u[200:], v[200:]).argmax(1)]
    assert np.mean(pred == y[200:]) > 0.9
    assert np.allclose(clf.predict_proba(u[:3], v[:3]).sum(1), 1)
    with pytest.raises(RuntimeError, match="not trained"):
        SentenceVerifier().predict_proba(u, v)
    with pytest.raises(ValueError, match="unknown labels"):
        SentenceVerifier().fit(u[:2], v[:2], ["SUPPORT", "MAYBE"])


def test_verify_claim_selects_rationales_then_labels():
    probs = [[0.05, 0.05, 0.9], [0.2, 0.6, 0.2], [0.5, 0.3, 0.2], [0.3, 0.3, 0.4]]
    out = verify_claim(probs, threshold=0.7, max_rationales=2)
    assert out["rationales"] == [1, 2] and out["label"] == "CONTRADICT"   # 0.9 vs 0.8 summed
    assert verify_claim(probs, threshold=0.95)["label"] == "NOT ENOUGH INFO"
    assert verify_claim(np.zeros((0, 3)))["label"] == "NOT ENOUGH INFO"
    with pytest.raises(ValueError):
        verify_claim(probs, threshold=2)


def test_mcnemar_counts_only_discordant_items():
    a = [True] * 30 + [False] * 10 + [True] * 5
    b = [True] * 30 + [True] * 1 + [False] * 9 + [False] * 5
    out = rag_eval.mcnemar(a, b)
    assert (out["a_only"], out["b_only"]) == (5, 1)
    from scipy.stats import binomtest
    assert out["p_value"] == pytest.approx(binomtest(5, 6, 0.5).pvalue)
    assert rag_eval.mcnemar([True], [True])["p_value"] == 1.0
    with pytest.raises(ValueError):
        rag_eval.mcnemar([True], [True, False])


def test_paired_bootstrap_and_per_label_recall():
    gold = ["SUPPORT", "CONTRADICT", "NOT ENOUGH INFO"] * 20
    perfect, always = list(gold), ["SUPPORT"] * 60
    out = rag_eval.paired_bootstrap(gold, perfect, always, n_resamples=200)
    assert out["diff"] == pytest.approx(1 - 1 / 6) and out["ci_low"] > 0.5 and out["p_value"] < 0.01
    scores = rag_eval.verification_scores(gold, always)
    assert scores["recall SUPPORT"] == 1 and scores["recall CONTRADICT"] == 0
