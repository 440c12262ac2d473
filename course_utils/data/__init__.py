"""Data sets: SciFact (BEIR) and STS-B loaders, package-shipped corpora, verified downloads.

A retrieval data set is `corpus` ({doc_id: {"title", "text"}}), `queries` ({qid: text}) and
`qrels`.
"""
from course_utils.data.loaders import *  # noqa: F403  (the stage's main API)
from course_utils.data.loaders import __all__  # noqa: F401
