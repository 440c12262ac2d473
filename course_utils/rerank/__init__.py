"""Second stages: cross-encoder re-ranking (cached), MaxSim, and training a cross-encoder."""
from course_utils.rerank.cross_encoder import *  # noqa: F403  (the stage's main API)
from course_utils.rerank.cross_encoder import __all__  # noqa: F401
