"""course_utils — the tested implementations behind the embeddings & retrieval course.

One data flow runs through every chapter::

    texts --encode--> vectors (n, d) float32, L2-normalised      (course_utils.embeddings)
    vectors --search--> Hits(scores, ids), (n_queries, k)          (course_utils.search)
    Hits --to_run--> run {qid: {doc_id: score}}                    (course_utils.search)
    run --evaluate(qrels, run, metrics)--> {metric: float}         (course_utils.evaluate)

Data sets come from `course_utils.data`, models from `course_utils.models`.
"""

__version__ = "0.1.0"
