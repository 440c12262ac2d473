"""A CLIP-style image-text model for the digits, trained here on the CPU.

CLIP (Radford et al. 2021) trains an image encoder and a text encoder so that an image and its
caption get nearby vectors: for a batch of B (image, caption) pairs the B x B matrix of scaled
cosines is read as B classification problems along its rows (image -> which caption?) and B along
its columns (caption -> which image?), each with the diagonal as the answer -- the symmetric
InfoNCE loss, `clip_loss`. Here the text tower is the frozen all-MiniLM-L6-v2 (its caption vectors
are inputs), followed by a trained linear projection; the image tower is a tiny CNN (`ImageEncoder`)
and a linear projection. Both land, L2-normalised, in one joint space of `dim` numbers.

`train_clip` saves each trained model under the model cache ($COURSE_MODEL_CACHE, default
data/cache/models), keyed by its configuration and data, so a second run trains nothing.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm  # text bars: no ipywidgets needed

__all__ = ["ImageEncoder", "DigitCLIP", "clip_loss", "TrainConfig", "training_key", "train_clip",
           "embed_images", "embed_texts"]


class ImageEncoder(nn.Module):
    """(n, 1, 8, 8) images -> (n, width) features: two 3x3 convolutions, a 2x2 max-pool, a linear layer.

    >>> ImageEncoder(width=32)(torch.zeros(5, 1, 8, 8)).shape
    torch.Size([5, 32])
    """

    def __init__(self, width: int = 128):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=3, padding=1)
        self.fc = nn.Linear(32 * 4 * 4, width)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(images))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)          # (n, 32, 4, 4)
        return F.relu(self.fc(x.flatten(1)))


class DigitCLIP(nn.Module):
    """Image tower (ImageEncoder + projection) and text projection into one space of `dim` numbers,
    with a learned temperature (logit scale = exp(logit_scale), at most 100, as in CLIP).

    >>> images, texts, scale = DigitCLIP(text_dim=384, dim=16)(torch.zeros(3, 1, 8, 8), torch.ones(3, 384))
    >>> images.shape, texts.shape, round(scale.item(), 2)           # 1 / 0.07 to start
    (torch.Size([3, 16]), torch.Size([3, 16]), 14.29)
    """

    def __init__(self, text_dim: int = 384, dim: int = 64, width: int = 128, temperature: float = 0.07):
        super().__init__()
        self.image_encoder = ImageEncoder(width)
        self.image_proj = nn.Linear(width, dim, bias=False)
        self.text_proj = nn.Linear(text_dim, dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / temperature)))

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image_proj(self.image_encoder(images)), dim=-1)

    def encode_text(self, text_vecs: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text_proj(text_vecs), dim=-1)

    def forward(self, images, text_vecs):
        return self.encode_image(images), self.encode_text(text_vecs), self.logit_scale.exp().clamp(max=100)


def clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale) -> torch.Tensor:
    """Symmetric InfoNCE of a batch of B pairs (row i of each is one pair), as a 0-d tensor.

    logits = logit_scale * cos(image_i, text_j); loss = (cross-entropy over each row, image ->
    caption, + cross-entropy over each column, caption -> image) / 2, the right answer on the diagonal.

    >>> e = torch.eye(2)
    >>> round(float(clip_loss(e, e, 1.0)), 4)            # log(1 + e^-1)
    0.3133
    """
    if image_emb.ndim != 2 or image_emb.shape != text_emb.shape:
        raise ValueError(f"image_emb and text_emb must both be (B, dim), row i a pair; got "
                         f"{tuple(image_emb.shape)} and {tuple(text_emb.shape)}")
    logits = logit_scale * F.normalize(image_emb, dim=-1) @ F.normalize(text_emb, dim=-1).T
    target = torch.arange(len(logits))
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that decides the trained weights (with the data); it keys the model cache.

    >>> TrainConfig(epochs=5).epochs, TrainConfig().dim
    (5, 64)
    """
    dim: int = 64
    width: int = 128
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    temperature: float = 0.07
    seed: int = 0


def _model_cache_dir() -> Path:
    """$COURSE_MODEL_CACHE, default `<repo>/data/cache/models`."""
    default = Path(__file__).resolve().parents[2] / "data" / "cache" / "models"
    return Path(os.environ.get("COURSE_MODEL_CACHE", default))


def _check_data(images, labels, caption_vecs):
    images = np.asarray(images, np.float32)
    labels = np.asarray(labels)
    caption_vecs = np.asarray(caption_vecs, np.float32)
    if images.ndim != 4 or images.shape[1:] != (1, 8, 8):
        raise ValueError(f"images must have shape (n, 1, 8, 8), got {images.shape}")
    if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be {len(images)} whole numbers, one per image; got shape {labels.shape}")
    if caption_vecs.ndim != 3 or labels.min() < 0 or labels.max() >= len(caption_vecs):
        raise ValueError("caption_vecs must be (n_classes, n_templates, text_dim), caption_vecs[label, t] "
                         f"the vector of label's caption in template t; got shape {caption_vecs.shape}")
    return images, labels.astype(np.int64), caption_vecs


def training_key(config: TrainConfig, images, labels, caption_vecs) -> str:
    """A short hash of the configuration and the training data (caption vectors rounded to 1e-4).

    >>> len(training_key(TrainConfig(), np.zeros((1, 1, 8, 8)), [0], np.zeros((1, 1, 3))))
    12
    """
    images, labels, caption_vecs = _check_data(images, labels, caption_vecs)
    h = hashlib.sha256(json.dumps(dataclasses.asdict(config), sort_keys=True).encode())
    for arr in (images, labels, np.round(caption_vecs, 4)):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:12]


def _fit(model, images, labels, caption_vecs, config, show_progress):
    rng = np.random.default_rng(config.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    X, T = torch.from_numpy(images), torch.from_numpy(caption_vecs)
    losses = []
    for _ in tqdm(range(config.epochs), desc="training (epochs)", leave=False, disable=not show_progress):
        order, total = rng.permutation(len(X)), 0.0
        for start in range(0, len(order), config.batch_size):
            idx = order[start:start + config.batch_size]
            if len(idx) < 2:                                 # one pair has no negative to learn from
                continue
            templates = rng.integers(0, T.shape[1], size=len(idx))   # a random caption per image
            img, txt, scale = model(X[idx], T[labels[idx], templates])
            loss = clip_loss(img, txt, scale)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        losses.append(total / len(X))
    return losses


def train_clip(images, labels, caption_vecs, config: TrainConfig = TrainConfig(), cache: bool = True,
               show_progress: bool = True):
    """Train a DigitCLIP on (image, caption) pairs; return (model in eval mode, info dict).

    images: (n, 1, 8, 8) float32; labels: (n,) digits; caption_vecs: (10, n_templates, text_dim),
    the frozen text model's vectors of every caption -- each step gives each image the caption of
    its label in a template drawn at random. info: "loss" per epoch, "seconds", "steps",
    "trained_now" (False: loaded from the cache), "key".

    >>> model, info = train_clip(X_train, y_train, caption_vecs, TrainConfig(epochs=5))   # doctest: +SKIP
    """
    images, labels, caption_vecs = _check_data(images, labels, caption_vecs)
    key = training_key(config, images, labels, caption_vecs)
    folder = _model_cache_dir() / f"digit-clip-{key}"
    model = DigitCLIP(caption_vecs.shape[2], config.dim, config.width, config.temperature)
    if cache and (folder / "training.json").exists():
        model.load_state_dict(torch.load(folder / "model.pt", weights_only=True))
        info = json.loads((folder / "training.json").read_text()) | {"trained_now": False}
        return model.eval(), info
    torch.manual_seed(config.seed)
    model = DigitCLIP(caption_vecs.shape[2], config.dim, config.width, config.temperature)
    start = time.perf_counter()
    losses = _fit(model, images, labels, caption_vecs, config, show_progress)
    info = {"loss": losses, "seconds": time.perf_counter() - start, "key": key,
            "steps": config.epochs * math.ceil(len(images) / config.batch_size),
            "config": dataclasses.asdict(config)}
    if cache:
        _save(model, info, folder)
    return model.eval(), info | {"trained_now": True}


def _save(model, info, folder: Path) -> None:
    """Write into a temporary folder, then rename it: readers never see half a model."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=folder.name + ".tmp"))
    torch.save(model.state_dict(), tmp / "model.pt")
    (tmp / "training.json").write_text(json.dumps(info))
    try:
        os.replace(tmp, folder)
    except OSError:                                          # another process saved it first
        shutil.rmtree(tmp, ignore_errors=True)


@torch.no_grad()
def embed_images(model: DigitCLIP, images, batch_size: int = 1024) -> np.ndarray:
    """Joint-space vectors of images (n, 1, 8, 8): float32 (n, dim), L2-normalised.

    >>> embed_images(DigitCLIP(dim=16), np.zeros((2, 1, 8, 8))).shape
    (2, 16)
    """
    images = np.asarray(images, np.float32)
    if images.ndim != 4:
        raise ValueError(f"images must have shape (n, 1, 8, 8), got {images.shape}")
    parts = [model.encode_image(torch.from_numpy(images[i:i + batch_size])).numpy()
             for i in range(0, len(images), batch_size)]
    return np.concatenate(parts).astype(np.float32)


@torch.no_grad()
def embed_texts(model: DigitCLIP, text_vecs) -> np.ndarray:
    """Joint-space vectors of texts, from their frozen text-model vectors (n, text_dim): (n, dim).

    >>> vecs = embed_texts(DigitCLIP(text_dim=384, dim=16), np.ones((2, 384)))
    >>> vecs.shape, bool(np.allclose(np.linalg.norm(vecs, axis=1), 1))
    ((2, 16), True)
    """
    text_vecs = np.asarray(text_vecs, np.float32)
    if text_vecs.ndim != 2 or text_vecs.shape[1] != model.text_proj.in_features:
        raise ValueError(f"text_vecs must be (n, {model.text_proj.in_features}) -- vectors of the text model "
                         f"the model was trained with; got shape {text_vecs.shape}")
    return model.encode_text(torch.from_numpy(text_vecs)).numpy().astype(np.float32)
