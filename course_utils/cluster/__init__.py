"""Clustering embeddings: k-means, agglomerative, HDBSCAN; cluster keywords (c-TF-IDF); maps."""
from course_utils.cluster.algorithms import *  # noqa: F403  (the stage's main API)
from course_utils.cluster.algorithms import __all__  # noqa: F401
