"""Approximate nearest-neighbour search with FAISS: index families, recall/QPS sweeps, memory sizing."""
from course_utils.ann.indexes import *  # noqa: F403  (the stage's main API)
from course_utils.ann.indexes import __all__  # noqa: F401
