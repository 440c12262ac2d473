"""The offline models: find and load them (threads set), ONNX encoders, RAG generators."""
from course_utils.models.loading import *  # noqa: F403  (the stage's main API)
from course_utils.models.loading import __all__  # noqa: F401
