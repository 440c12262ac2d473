"""Fine-tuning a bi-encoder on the CPU: training pairs, hard negatives, leakage check, the trainer, a linear adapter."""
from course_utils.finetune.training import *  # noqa: F403  (the stage's main API)
from course_utils.finetune.training import __all__  # noqa: F401
from course_utils.paths import model_cache_dir  # noqa: E402,F401  (where trained models are kept)
