"""vectors --search--> Hits(scores, ids): exact search, filters, recommendations, a persistent store."""
from course_utils.search.exact import *  # noqa: F403  (the stage's main API)
from course_utils.search.exact import __all__  # noqa: F401
