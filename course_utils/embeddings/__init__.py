"""texts --encode--> vectors float32 (n, d), L2-normalised; similarity, cache, pooling, quality, STS."""
from course_utils.embeddings.encoding import *  # noqa: F403  (the stage's main API)
from course_utils.embeddings.encoding import __all__  # noqa: F401
