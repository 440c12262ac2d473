"""Fusion of runs (min-max / z-score convex fusion, RRF) and query expansion."""
from course_utils.hybrid.fusion import *  # noqa: F403  (the stage's main API)
from course_utils.hybrid.fusion import __all__  # noqa: F401
