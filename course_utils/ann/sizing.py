"""Factory strings and memory arithmetic: what an index costs per vector, and at scale.

`parse_factory` reads the parts of a FAISS factory string the course uses (OPQ, IVF, HNSW, PQ, SQ,
LSH, Flat, RFlat) and names its family; `min_train` says how many training vectors it needs.
`memory_model` gives the serialised size as fixed bytes + bytes per vector, one formula per part
(from FAISS's index_write.cpp layout, checked against `faiss.serialize_index` in the tests):

    codes        Flat 4·d · SQfp16 2·d · SQ8 d · SQ4 d/2 · PQ m·nbits/8 · LSH nbits/8
    IVF          + 8 (the int64 id stored next to each code in its inverted list)
    HNSW         + 4·(2·M + M/(M−1)) links (int32; 2M on level 0, M per upper level, levels
                 drawn with P(level ≥ l) = M^−l) + 12 (level and offset bookkeeping)
    RFlat        + 4·d (full vectors kept for exact re-ranking)
    fixed        IVF nlist·d·4 (centroids) · PQ 2^nbits·d·4 (codebooks) · OPQ d²·4 (rotation)
                 · SQ8/SQ4 2·d·4 (ranges) · LSH with rotation nbits·d·4

`scale_table` turns that into gigabytes for 1 M, 100 M and 1 B vectors and the largest
collection one machine holds, which is where sharding (a distributed engine) has to take over.
"""
from __future__ import annotations

import math
import re

import pandas as pd

__all__ = ["FAMILIES", "parse_factory", "family", "min_train", "memory_model",
           "estimate_bytes", "scale_table", "MIN_POINTS_PER_CENTROID"]

# family -> (example factory string, the search-time parameter that trades speed for recall)
FAMILIES = {
    "Flat": ("Flat", None),
    "IVF-Flat": ("IVF256,Flat", "nprobe"),
    "IVF-SQ": ("IVF256,SQ8", "nprobe"),
    "IVF-PQ": ("IVF256,PQ48np", "nprobe"),
    "OPQ+IVF-PQ": ("OPQ48,IVF256,PQ48np", "nprobe"),
    "PQ": ("PQ48np", None),
    "HNSW": ("HNSW32", "efSearch"),
    "SQ": ("SQ8", None),
    "LSH": ("LSH1024r", None),
}
MIN_POINTS_PER_CENTROID = 39  # FAISS ClusteringParameters.min_points_per_centroid

_PART = {
    "opq": re.compile(r"OPQ(\d+)(?:_(\d+))?"),
    "ivf": re.compile(r"IVF(\d+)"),
    "hnsw": re.compile(r"HNSW(\d+)(?:_PQ(\d+)(?:x(\d+))?)?"),
    "pq": re.compile(r"PQ(\d+)(?:x(\d+))?(fs|np)?"),
    "sq": re.compile(r"SQ(fp16|bf16|8|6|4)"),
    "lsh": re.compile(r"LSH(\d*)(r?)(t?)"),
    "flat": re.compile(r"Flat"),
    "refine": re.compile(r"RFlat|Refine\(Flat\)"),
}


def parse_factory(factory: str) -> dict:
    """The parts of a factory string the course uses, as a dict (unknown parts -> ValueError).

    >>> parse_factory("OPQ16_64,IVF256,PQ16x4fs,RFlat")["family"]
    'OPQ+IVF-PQ + re-rank'
    >>> parse_factory("HNSW32")["M"], parse_factory("LSH512r")["lsh_bits"]
    (32, 512)
    """
    if not isinstance(factory, str) or not factory.strip():
        raise TypeError(f"factory must be a FAISS factory string such as 'IVF256,Flat', got {factory!r}")
    out = {"factory": factory, "opq": None, "opq_dout": None, "nlist": None, "M": None,
           "pq_m": None, "pq_nbits": None, "sq": None, "lsh_bits": None, "lsh_rotate": False,
           "lsh_train": False, "refine": False, "flat": False}
    for part in factory.replace(" ", "").split(","):
        name, match = next(((n, r.fullmatch(part)) for n, r in _PART.items() if r.fullmatch(part)),
                           (None, None))
        if name is None:
            raise ValueError(f"unknown part {part!r} in factory string {factory!r}; the course "
                             "parses " + ", ".join(repr(f) for f, _ in FAMILIES.values())
                             + " and ',RFlat' (exact re-ranking); see the FAISS wiki page "
                             "'The index factory' for the full grammar")
        _store(out, name, match)
    out["family"] = _family(out)
    return out


def _store(out: dict, name: str, m: re.Match) -> None:
    if name == "opq":
        out["opq"], out["opq_dout"] = int(m[1]), int(m[2]) if m[2] else None
    elif name == "ivf":
        out["nlist"] = int(m[1])
    elif name == "hnsw":
        out["M"] = int(m[1])
        if m[2]:
            out["pq_m"], out["pq_nbits"] = int(m[2]), int(m[3] or 8)
    elif name == "pq":
        out["pq_m"], out["pq_nbits"] = int(m[1]), int(m[2] or (4 if m[3] == "fs" else 8))
    elif name == "sq":
        out["sq"] = m[1]
    elif name == "lsh":
        out["lsh_bits"], out["lsh_rotate"], out["lsh_train"] = (int(m[1]) if m[1] else None,
                                                                bool(m[2]), bool(m[3]))
    else:
        out[name] = True


def _family(p: dict) -> str:
    codes = "PQ" if p["pq_m"] else "SQ" if p["sq"] else "Flat"
    if p["lsh_bits"] is not None or p["factory"].startswith("LSH"):
        fam = "LSH"
    elif p["M"]:
        fam = "HNSW"
    elif p["nlist"]:
        fam = ("OPQ+" if p["opq"] else "") + "IVF-" + codes
    else:
        fam = ("OPQ+" if p["opq"] else "") + codes
    return fam + (" + re-rank" if p["refine"] else "")


def family(factory: str) -> str:
    """Family name of a factory string ('IVF-PQ', 'HNSW', ...).

    >>> family("IVF1024,PQ32x8")
    'IVF-PQ'
    """
    return parse_factory(factory)["family"]


def min_train(factory: str) -> int:
    """Training vectors needed: 39 per k-means centroid (IVF: nlist; PQ: 2^nbits); SQ: 1.

    >>> min_train("IVF100,Flat"), min_train("IVF64,PQ8"), min_train("HNSW32"), min_train("SQ8")
    (3900, 9984, 0, 1)
    """
    p = parse_factory(factory)
    centroids = max(p["nlist"] or 0, 2 ** p["pq_nbits"] if p["pq_m"] else 0)
    if centroids:
        return MIN_POINTS_PER_CENTROID * centroids
    return 1 if (p["sq"] in ("8", "6", "4") or p["lsh_train"]) else 0


def _code_bytes(p: dict, d: int) -> float:
    if p["lsh_bits"] is not None or p["family"].startswith("LSH"):
        return math.ceil((p["lsh_bits"] or d) / 8)
    if p["pq_m"]:
        return math.ceil(p["pq_m"] * p["pq_nbits"] / 8)
    if p["sq"]:
        return {"fp16": 2 * d, "bf16": 2 * d, "8": d, "6": math.ceil(6 * d / 8),
                "4": math.ceil(d / 2)}[p["sq"]]
    return 4 * d


def memory_model(factory: str, d: int) -> tuple[float, float]:
    """(fixed bytes, bytes per vector) of the serialised index for dimension d.

    >>> memory_model("Flat", 384)
    (0.0, 1536.0)
    >>> memory_model("IVF1024,PQ48", 384)            # 48 code bytes + an 8-byte id per vector
    (1974272.0, 56.0)
    """
    p = parse_factory(factory)
    dc = p["opq_dout"] or d  # dimension after the OPQ rotation
    per = float(_code_bytes(p, dc))
    fixed = 0.0
    if p["nlist"]:
        per += 8
        fixed += p["nlist"] * (dc * 4 + 8)
    if p["M"]:
        M = p["M"]
        per += 4 * (2 * M + M / (M - 1)) + 12
    if p["pq_m"]:
        fixed += 2 ** p["pq_nbits"] * dc * 4
    if p["opq"]:
        fixed += dc * d * 4 + dc * 4
    if p["sq"] in ("8", "6", "4"):
        fixed += 2 * d * 4
    if p["lsh_bits"] is not None or p["family"].startswith("LSH"):
        fixed += (p["lsh_bits"] or d) * (d * 4 * p["lsh_rotate"] + 4 * p["lsh_train"])
    if p["refine"]:
        per += 4 * d
    return fixed, per


def estimate_bytes(factory: str, d: int, n: int) -> float:
    """Serialised index size for n vectors of dimension d: fixed + n · bytes per vector.

    >>> estimate_bytes("SQ8", 384, 1_000_000) / 1e9
    0.384003072
    """
    fixed, per = memory_model(factory, d)
    return fixed + n * per


def scale_table(factories, d: int = 384, sizes=(1_000_000, 100_000_000, 1_000_000_000),
                ram_gb=(24, 64), usable: float = 0.7) -> pd.DataFrame:
    """Memory on paper: GB per index at each collection size, and how many vectors fit one machine.

    usable: share of a machine's RAM the index may take (the OS, the service, query buffers
    and a rebuild need the rest). Columns: family, bytes/vector, 'GB @ 1M', ..., 'max n @ 24 GB',
    ..., and 'machines @ 1B' (machines of the largest RAM size for the largest collection).

    >>> float(scale_table(["Flat"], sizes=(1_000_000,), ram_gb=(64,)).loc["Flat", "GB @ 1M"])
    1.536
    """
    if not 0 < usable <= 1:
        raise ValueError(f"usable must be in (0, 1], got {usable}")
    rows = {}
    for f in factories:
        fixed, per = memory_model(f, d)
        row = {"family": family(f), "bytes/vector": per}
        for n in sizes:
            row[f"GB @ {_short(n)}"] = (fixed + n * per) / 1e9
        for gb in ram_gb:
            row[f"max n @ {gb} GB"] = int(max(usable * gb * 1e9 - fixed, 0) // per)
        row[f"machines @ {_short(max(sizes))}"] = math.ceil(
            (fixed + max(sizes) * per) / (usable * max(ram_gb) * 1e9))
        rows[f] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("index")


def _short(n: int) -> str:
    for unit, size in (("B", 10**9), ("M", 10**6), ("k", 10**3)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return str(n)
