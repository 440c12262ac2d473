"""The stance head: training triples, the claim split, class weights, probabilities in LABELS
order, and (with the model) a tiny three-label cross-encoder trained, cached and reloaded."""
import numpy as np
import pytest

from course_utils.rag import LABELS
from course_utils.rag.stance import (
    balanced_weights,
    select_stance_head,
    split_claims,
    stance_probs,
    stance_triples,
    train_stance_head,
)
from course_utils.rag.verify import rationale_pairs, verify_claim
from course_utils.rerank.training import train_cross_encoder, training_log

CLAIMS = [{"id": 1, "claim": "A cures B.", "cited_doc_ids": [10],
           "evidence": {"10": [{"sentences": [0], "label": "SUPPORT"}]}},
          {"id": 2, "claim": "C harms D.", "cited_doc_ids": [11],
           "evidence": {"11": [{"sentences": [1], "label": "CONTRADICT"}]}}]
ABSTRACTS = {"10": ["A cured B in mice.", "Mice were fed."], "11": ["Rats slept.", "C did not harm D."]}


def test_stance_triples_number_the_labels_in_labels_order():
    triples = stance_triples(rationale_pairs(CLAIMS, ABSTRACTS, nei_per_doc=1, seed=0))
    assert triples == [("A cures B.", "A cured B in mice.", 0), ("A cures B.", "Mice were fed.", 2),
                       ("C harms D.", "C did not harm D.", 1), ("C harms D.", "Rats slept.", 2)]
    with pytest.raises(ValueError, match="unknown labels"):
        stance_triples([{"claim": "a", "sentence": "b", "label": "REFUTES"}])


def test_split_claims_is_seeded_disjoint_and_complete():
    claims = [{"id": i} for i in range(40)]
    fit, val = split_claims(claims, validation_share=0.2, seed=3)
    assert len(val) == 8 and {c["id"] for c in fit}.isdisjoint(c["id"] for c in val)
    assert sorted(c["id"] for c in fit + val) == list(range(40))
    assert (fit, val) == split_claims(claims, validation_share=0.2, seed=3)
    assert val != split_claims(claims, validation_share=0.2, seed=4)[1]
    for bad in (0, 1, 1.5):
        with pytest.raises(ValueError, match="between 0 and 1"):
            split_claims(claims, validation_share=bad)
    with pytest.raises(ValueError, match="too few"):
        split_claims(claims[:2], validation_share=0.1)


def test_balanced_weights_equalise_the_classes():
    classes = [0] * 6 + [1] * 2 + [2] * 12
    w = balanced_weights(classes)
    totals = [w[k] * classes.count(k) for k in range(3)]
    assert np.allclose(totals, totals[0], rtol=0.01)
    with pytest.raises(ValueError, match="at least one"):
        balanced_weights([0, 0, 2])


class FixedHead:
    """A stand-in cross-encoder: logits chosen per sentence."""

    def __init__(self, logits):
        self.logits = logits

    def predict(self, pairs, **kwargs):
        return np.array([self.logits[s] for _, s in pairs])


def test_stance_probs_softmax_in_labels_order_and_claim_verdict():
    head = FixedHead({"yes": [3.0, 0.0, 0.0], "no": [0.0, 3.0, 0.0], "meh": [0.0, 0.0, 3.0]})
    probs = stance_probs(head, "claim", ["meh", "no", "yes"])
    assert probs.shape == (3, 3) and np.allclose(probs.sum(axis=1), 1)
    assert [LABELS[i] for i in probs.argmax(axis=1)] == ["NOT ENOUGH INFO", "CONTRADICT", "SUPPORT"]
    assert stance_probs(head, "claim", []).shape == (0, 3)
    out = verify_claim(probs, threshold=0.5, max_rationales=1)
    assert out["rationales"] in ([1], [2]) and out["label"] in ("SUPPORT", "CONTRADICT")
    with pytest.raises(ValueError, match="3 logits"):
        stance_probs(FixedHead({"a": [1.0]}), "claim", ["a"])


def test_train_cross_encoder_rejects_bad_classifier_settings(tmp_path):
    with pytest.raises(ValueError, match="class labels must lie"):
        train_cross_encoder([("a", "b", 3)], num_labels=3, root=tmp_path)
    with pytest.raises(ValueError, match="one weight per class"):
        train_cross_encoder([("a", "b", 1)], num_labels=3, class_weights=[1.0, 2.0], root=tmp_path)
    with pytest.raises(ValueError, match="num_labels"):
        train_cross_encoder([("a", "b", 1)], num_labels=0, root=tmp_path)
    with pytest.raises(ValueError, match="validation triples"):
        select_stance_head([("a", "b", 1)], [], root=tmp_path)


@pytest.mark.model
def test_stance_head_trains_caches_and_keeps_its_best_step(tmp_path):
    triples = stance_triples(rationale_pairs(CLAIMS, ABSTRACTS, nei_per_doc=1, seed=0)) * 2
    kw = dict(max_steps=2, batch_size=4, max_length=32, evaluations=2, root=tmp_path, show_progress=False)
    head = train_stance_head(triples, triples[:4], learning_rate=1e-4, **kw)
    assert head.trained_now and head.course_model_id.startswith("minilm-stance-")
    log = training_log(head)
    assert log["validation"] and log["best_step"] in [s for s, _ in log["validation"]]
    again = train_stance_head(triples, triples[:4], learning_rate=1e-4, **kw)
    assert not again.trained_now and again.course_model_id == head.course_model_id
    probs = stance_probs(again, "A cures B.", ["A cured B in mice.", "Rats slept."])
    assert probs.shape == (2, 3) and np.allclose(probs.sum(axis=1), 1)
    np.testing.assert_allclose(probs, stance_probs(head, "A cures B.", ["A cured B in mice.", "Rats slept."]), atol=1e-5)
    model, rows = select_stance_head(triples, triples[:4], learning_rates=(1e-4, 3e-5), **kw)
    assert len(rows) == 2 and model.course_model_id in {head.course_model_id} | {
        f.name for f in tmp_path.iterdir()}
    assert len([f for f in tmp_path.iterdir() if not f.name.startswith(".")]) == 2
