"""course_utils — the tested implementations behind the embeddings & retrieval course.

One data flow runs through every chapter, and the subpackages follow it::

    texts --encode--> vectors (n, d) float32, L2-normalised      embeddings/
    vectors --search--> Hits(scores, ids), (n_queries, k)          search/, ann/, lexical/
    Hits --to_run--> run {qid: {doc_id: score}}                    runs
    run --fuse / rerank--> run                                     hybrid/, rerank/
    run --evaluate(qrels, run, metrics)--> {metric: float}         evaluate/

Data sets come from `data/`, models from `models/`, folders and settings from `paths`.
`from course_utils import bm25, hybrid, evaluate` works: the names of the flat layout the
chapters grew up with are lazy aliases of the modules that hold them now (PEP 562).
"""
import importlib

__version__ = "0.2.0"

SUBPACKAGES = ("paths", "runs", "data", "models", "embeddings", "search", "ann", "lexical",
               "hybrid", "rerank", "evaluate", "cluster", "rag", "finetune", "multimodal",
               "scale", "production", "speed", "display", "tools", "grading")

# short name -> the module that holds it (relative to course_utils)
ALIASES = {
    "corpora": "data.corpora", "topic_corpora": "data.topic_corpora", "download": "data.download",
    "onnx_encoders": "models.onnx_encoders", "generators": "models.generators",
    "cache": "embeddings.cache", "pooling": "embeddings.pooling", "quality": "embeddings.quality",
    "sts": "embeddings.sts", "similarity": "embeddings.similarity",
    "filtering": "search.filtering", "recommend": "search.recommend", "store": "search.store",
    "hits": "search.hits",
    "ann_sweep": "ann.sweep", "ann_scale": "ann.sizing",
    "bm25": "lexical.bm25", "baselines": "lexical.baselines",
    "expansion": "hybrid.expansion", "crossencoder": "rerank.training",
    "significance": "evaluate.significance",
    "cluster_labels": "cluster.labels", "cluster_plots": "cluster.plots",
    "chunking": "rag.chunking", "rag_cache": "rag.cache", "rag_eval": "rag.evaluation",
    "rag_variants": "rag.variants",
    "finetune_data": "finetune.pairs", "adapter": "finetune.adapter",
    "service": "production.service", "vectordb": "production.vectordb",
    "drift": "production.drift", "pii": "production.pii", "serving": "production.serving",
    "stack": "production.stack",
    "timing": "speed.timing", "quantize": "speed.quantize", "embed_api": "speed.embed_api",
    "present": "display.tables", "plotting": "display.plots",
    "cli": "tools.cli", "collections": "tools.named_collections", "notebooks": "tools.notebooks",
    "book": "tools.book",
}

__all__ = ["__version__", *SUBPACKAGES, *ALIASES]


def __getattr__(name: str):
    """Import a subpackage or an aliased module on first use (PEP 562)."""
    if name in ALIASES:
        module = importlib.import_module(f"{__name__}.{ALIASES[name]}")
    elif name in SUBPACKAGES:
        module = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}; the subpackages are "
                             f"{', '.join(SUBPACKAGES)}")
    globals()[name] = module
    return module


def __dir__():
    return sorted(set(globals()) | set(__all__))
