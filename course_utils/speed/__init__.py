"""Fast embeddings: batching, threads, process pools, profiling, timing, quantised vectors, an embedding API."""
from course_utils.speed.fast_encoding import *  # noqa: F403  (the stage's main API)
from course_utils.speed.fast_encoding import __all__  # noqa: F401
