"""Download a data archive with checksum verification, atomically.

Used only when a data set is neither in the data home nor in ../shared/datasets. Tests exercise it
against a loopback HTTP server; nothing in CI touches the internet.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from tqdm import tqdm  # text bars: no ipywidgets needed

__all__ = ["ChecksumError", "file_hash", "verify_sha256sums", "download", "extract_zip"]


class ChecksumError(ValueError):
    """A file's checksum differs from the published one."""


def file_hash(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB blocks.

    >>> import tempfile; f = tempfile.NamedTemporaryFile(delete=False); _ = f.write(b"abc"); f.close()
    >>> file_hash(f.name, "md5")
    '900150983cd24fb0d6963f7d28e17f72'
    """
    digest = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256sums(folder: str | Path, sums_file: str = "SHA256SUMS") -> None:
    """Check every file listed in `folder/SHA256SUMS` (sha256sum format); raise on the first bad one.

    >>> verify_sha256sums("/nonexistent")          # doctest: +ELLIPSIS
    Traceback (most recent call last):
    FileNotFoundError: ...
    """
    folder = Path(folder)
    sums = folder / sums_file
    if not sums.exists():
        raise FileNotFoundError(f"{sums} not found: cannot verify the files in {folder}")
    for line in sums.read_text().splitlines():
        if not line.strip():
            continue
        expected, name = line.split(maxsplit=1)
        path = folder / name.lstrip("*")
        if not path.exists():
            raise FileNotFoundError(f"{path} is listed in {sums} but missing; re-copy or re-download it")
        actual = file_hash(path)
        if actual != expected:
            raise ChecksumError(f"{path}: sha256 {actual} differs from {expected} in {sums}; the file is "
                                "corrupt or was edited -- delete it and copy or download it again")


def download(url: str, dest: str | Path, md5: str | None = None, sha256: str | None = None) -> Path:
    """Download `url` to the file `dest`, verify its checksum, and only then move it into place.

    >>> download("http://127.0.0.1:9/none.zip", "/tmp/x.zip")   # doctest: +SKIP
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=dest.parent, suffix=".part", delete=False) as tmp:
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name) as bar:
                    for block in iter(lambda: response.read(1 << 16), b""):
                        tmp.write(block)
                        bar.update(len(block))
        except OSError as err:
            Path(tmp.name).unlink(missing_ok=True)
            raise ConnectionError(f"could not download {url}: {err}. Without internet, copy the data "
                                  "set into the data home ($COURSE_DATA) instead.") from err
    for algorithm, expected in (("md5", md5), ("sha256", sha256)):
        if expected and (actual := file_hash(tmp.name, algorithm)) != expected:
            Path(tmp.name).unlink()
            raise ChecksumError(f"{url}: {algorithm} {actual} differs from the published {expected}; "
                                "the download is corrupt or the file changed upstream -- try again")
    Path(tmp.name).replace(dest)
    return dest


def extract_zip(archive: str | Path, dest: str | Path) -> Path:
    """Unpack `archive` into `dest` via a temporary folder, so a failed unpack leaves nothing half-made.

    >>> extract_zip("/nonexistent.zip", "/tmp/out")   # doctest: +SKIP
    """
    archive, dest = Path(archive), Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".unpack-"))
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():  # refuse paths that escape the folder
                if Path(member).is_absolute() or ".." in Path(member).parts:
                    raise ValueError(f"{archive}: unsafe path {member!r} in archive")
            zf.extractall(tmp)
        if dest.exists():
            shutil.rmtree(dest)
        tmp.replace(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest
