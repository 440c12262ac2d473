"""run --evaluate(qrels, run, metrics)--> {metric: float}: IR metrics (= pytrec_eval), significance."""
from course_utils.evaluate.metrics import *  # noqa: F403  (the stage's main API)
from course_utils.evaluate.metrics import __all__  # noqa: F401
from course_utils.runs import trec_order  # noqa: E402,F401  (trec_eval's order, used with the metrics)
