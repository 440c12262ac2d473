"""Production: the search service, vector databases (LanceDB, Chroma), drift, PII, starting servers."""
