"""The label parser on answers SmolLM2-135M really wrote (chapter 07's generation section), and on
hand-made cases: a negation anywhere in a clause cancels a SUPPORT / CONTRADICT mention there."""
import pytest

from course_utils import rag
from course_utils.rag.labels import label_mentions, parse_label

# Answers of SmolLM2-135M-Instruct (Q4_1 GGUF, greedy decoding) to chapter 07's verify
# prompts (plain and with fenced sources) on SciFact dev claims, copied from executed runs.
REAL = [
    ("The claim is not supported by the sources. The sources do not provide evidence that a high "
     "microerythrocyte count in homozygous alpha (+-thalassemia) increases the risk of severe anemia "
     "in homozygous (+-thalas", None),
    ("Claim: The claim is not supported by the sources.", None),
    ("This claim is not supported by the sources.", None),
    ("The claim is not supported by the sources. The sources do not provide evidence that ALDH1 expression is "
     "associated with better breast cancer outcomes.", None),
    ("The claim is not supported by the sources. The source with the label \"Claim 1\" is not supported by", None),
    ("The text is not supported by any credible sources. It is not supported by credible sources that support "
     "the claim that ALDH", None),
    ("1. [1]\n2. [2]\n3. [3]\n4. [4]", None),
]


@pytest.mark.parametrize("answer,label", REAL)
def test_real_answers(answer, label):
    assert parse_label(answer) == label


@pytest.mark.parametrize("answer,label", [
    ("SUPPORT [1]", "SUPPORT"), ("The sources contradict it [2].", "CONTRADICT"),
    ("Not enough info.", "NOT ENOUGH INFO"), ("NOT ENOUGH INFO [1]", "NOT ENOUGH INFO"),
    ("The claim is not supported. It is contradicted.", "CONTRADICT"),
    ("It doesn't support the claim.", None), ("Unsupported.", None), ("I like turtles.", None),
    # the old one-word-back rule read these as SUPPORT: the negation is further away
    ("The sources do not provide any evidence to support the claim.", None),
    ("There is no data in the sources that would support this.", None),
    ("Nothing here fails to support it", None),
    # a later clause may state the label
    ("The sources do not contradict the claim; they support it [1].", "SUPPORT"),
    ("The claim is not refuted, but the sources support it.", "SUPPORT"),
    ("There is not enough information to support the claim.", "NOT ENOUGH INFO"),
])
def test_negation_anywhere_in_the_clause(answer, label):
    assert parse_label(answer) == label


def test_mentions_and_the_package_name():
    assert rag.parse_label is parse_label and rag.LABELS == ("SUPPORT", "CONTRADICT", "NOT ENOUGH INFO")
    assert label_mentions("Supported. Not contradicted.") == [(0, "SUPPORT", False), (15, "CONTRADICT", True)]
    with pytest.raises(TypeError):
        parse_label(None)
