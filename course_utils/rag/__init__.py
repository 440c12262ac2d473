"""Retrieval-augmented generation: chunking with provenance, retrieve → prompt → generate, cache,
evaluation, variants."""
from course_utils.rag.pipeline import *  # noqa: F403  (the stage's main API)
from course_utils.rag.pipeline import __all__  # noqa: F401
