"""Scaling out with Ray (chapter 12): a local multi-node cluster, distributed embedding with Ray
Data, FAISS shards as actors with a scatter-gather merge, and capacity arithmetic.

Modules, one role each: `cluster` (start/stop a loopback cluster, connect quietly) · `embed`
(map_batches with an actor pool, Parquet shards, resume, exactly-once check, the embedding
cache) · `shards` (shard actors, the top-k merge) · `capacity` (nodes, hours and memory for a
corpus, from measured rates).
"""
import logging
import os

# Ray's notebook helpers log "Missing packages: ['ipywidgets']" when Ray is imported in a kernel.
logging.getLogger("ray.widgets.util").setLevel(logging.ERROR)
# Ray reads the authentication mode once, when it is imported: token auth, as Ray 2.60 wants.
os.environ.setdefault("RAY_AUTH_MODE", "token")
