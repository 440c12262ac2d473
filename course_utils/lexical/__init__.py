"""Lexical retrieval: BM25 from first principles on sparse matrices, and TF-IDF / rank-bm25 baselines."""
