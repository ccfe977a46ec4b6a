"""Page summaries become exact statistics, whatever shape each field arrives in."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.convocore.pages import BUCKET_LABELS, MARKDOWN_BUCKETS, PageStats, is_empty, page_key


def page(**over: Any) -> dict[str, Any]:
    """A realistic page summary with every documented field set."""
    summary: dict[str, Any] = {
        "id": "page-1",
        "url": "https://docs.example.com/guide",
        "urlHash": "9f86d081884c7d65",
        "title": "Guide",
        "description": "How to use the product",
        "scrapedAt": 1796040000123,
        "imageUrl": None,
        "userId": "user-1",
        "mdCharCount": 2400,
        "htmlCharCount": 18000,
        "failed": False,
    }
    summary.update(over)
    return summary


def stats_of(*pages: Any) -> PageStats:
    stats = PageStats()
    for item in pages:
        stats.add(item)
    return stats


def test_realistic_pages_give_exact_totals():
    stats = stats_of(
        page(),
        page(id="p2", mdCharCount=0, htmlCharCount=1500, scrapedAt=1796040060000),
        page(id="p3", mdCharCount=100, htmlCharCount=900, scrapedAt=1796039000000),
        page(id="p4", mdCharCount=150_000, htmlCharCount=400_000),
        page(id="p5", failed=True, mdCharCount=0, htmlCharCount=0, title=""),
    )
    assert stats.listed == 5
    assert stats.empty == 1  # p2; p5 failed, so it is not empty
    assert stats.markdown_chars == 2400 + 0 + 100 + 150_000 + 0
    assert stats.html_chars == 18000 + 1500 + 900 + 400_000 + 0
    assert stats.markdown_pages == 5
    assert stats.last_scraped == 1796040060.0
    # <=0: p2, p5; <=100: p3; <=1k: -; <=10k: p1; <=100k: -; above: p4
    assert stats.buckets == [2, 1, 0, 1, 0, 1]
    assert stats.cumulative() == [
        ("0.0", 2),
        ("100.0", 3),
        ("1000.0", 3),
        ("10000.0", 4),
        ("100000.0", 4),
        ("+Inf", 5),
    ]


def test_bucket_labels_are_prometheus_client_style():
    from prometheus_client.utils import floatToGoString

    assert tuple(floatToGoString(b) for b in (*MARKDOWN_BUCKETS, float("inf"))) == BUCKET_LABELS
    assert BUCKET_LABELS == ("0.0", "100.0", "1000.0", "10000.0", "100000.0", "+Inf")


@pytest.mark.parametrize(
    ("over", "empty"),
    [
        ({}, False),
        ({"mdCharCount": 0}, True),
        ({"mdCharCount": 0.0}, True),
        ({"mdCharCount": 0, "title": "Has a title"}, True),  # the count wins over the title
        ({"mdCharCount": 1}, False),
        ({"mdCharCount": 0, "failed": True}, False),
        ({"mdCharCount": 0, "failed": "true"}, True),  # a mistyped flag is not failed
        ({"mdCharCount": None, "title": None}, True),
        ({"mdCharCount": None, "title": "   "}, True),
        ({"mdCharCount": None, "title": "Pricing"}, False),
        ({"mdCharCount": "0", "title": "Pricing"}, False),  # a string is not a count
        ({"mdCharCount": "0", "title": 5}, True),
        ({"mdCharCount": True, "title": None}, True),  # a boolean is not a count either
        ({"mdCharCount": -3, "title": None}, True),
        ({"mdCharCount": -3, "title": "x"}, False),
    ],
)
def test_the_empty_rule(over, empty):
    assert is_empty(page(**over)) is empty


def test_a_page_without_any_field_is_listed_and_empty():
    stats = stats_of({})
    assert stats == PageStats(listed=1, empty=1)


@pytest.mark.parametrize("item", [None, 7, "page", ["id", "x"], True])
def test_a_summary_that_is_not_an_object_is_only_listed(item):
    assert stats_of(item) == PageStats(listed=1)
    expected = stats_of(page())
    expected.listed = 2
    assert stats_of(item, page()) == expected


@pytest.mark.parametrize(
    "bad",
    [None, "2400", True, False, -1, float("nan"), float("inf"), [], {}, 10**400],
)
def test_mistyped_counts_are_left_out_of_sums_and_histogram(bad):
    stats = stats_of(page(mdCharCount=bad, htmlCharCount=bad), page(id="p2"))
    assert stats.listed == 2
    assert stats.markdown_chars == 2400
    assert stats.html_chars == 18000
    assert stats.markdown_pages == 1
    assert sum(stats.buckets) == 1


@pytest.mark.parametrize(
    ("scraped_at", "seconds"),
    [
        (1796040000123, 1796040000.123),  # milliseconds, as Convocore uses elsewhere
        (1796040000, 1796040000.0),  # seconds
        (1796040000.5, 1796040000.5),
        ("2026-11-30T08:00:00Z", 1796025600.0),
        ("2026-11-30T08:00:00", 1796025600.0),  # no zone: UTC
    ],
)
def test_scraped_at_in_milliseconds_or_seconds(scraped_at, seconds):
    assert stats_of(page(scrapedAt=scraped_at)).last_scraped == seconds


@pytest.mark.parametrize("bad", [None, "yesterday", True, -5, [], {}, float("nan")])
def test_a_mistyped_scraped_at_is_ignored(bad):
    assert stats_of(page(scrapedAt=bad)).last_scraped is None
    assert stats_of(page(scrapedAt=bad), page(scrapedAt=1796040000)).last_scraped == 1796040000


def test_last_scraped_is_the_latest_whatever_the_order():
    stats = stats_of(
        page(scrapedAt=1796040300000), page(scrapedAt=1796040000), page(scrapedAt=1796039000000)
    )
    assert stats.last_scraped == 1796040300.0


def test_bucket_bounds_are_inclusive():
    stats = stats_of(*(page(mdCharCount=n) for n in (0, 100, 101, 1000, 10000, 100000, 100001)))
    assert stats.buckets == [1, 1, 2, 1, 1, 1]


def test_copy_is_independent():
    original = stats_of(page())
    copied = original.copy()
    copied.add(page(mdCharCount=0))
    assert original == stats_of(page())
    assert copied.listed == 2 and copied.buckets[0] == 1 and original.buckets[0] == 0


@pytest.mark.parametrize(
    ("item", "key"),
    [
        (page(), "page-1"),
        (page(id=None), "9f86d081884c7d65"),
        (page(id=5, urlHash=""), "https://docs.example.com/guide"),
        (page(id=None, urlHash=None, url=None), None),
        (None, None),
        ("page-1", None),
    ],
)
def test_page_key(item, key):
    assert page_key(item) == key


def test_a_gauge_histogram_in_both_exposition_formats():
    from exporter.exposition.writer import Family, write_openmetrics, write_text

    def family() -> Family:
        samples = [
            ("_bucket", 'j="a",le="0.0"', 1.0),
            ("_bucket", 'j="a",le="+Inf"', 3.0),
            ("_gcount", 'j="a"', 3.0),
            ("_gsum", 'j="a"', 250.0),
        ]
        return Family("chars", "gaugehistogram", "Pages by characters.", iter(samples))

    assert write_openmetrics([family()]).decode() == (
        "# HELP chars Pages by characters.\n# TYPE chars gaugehistogram\n"
        'chars_bucket{j="a",le="0.0"} 1\nchars_bucket{j="a",le="+Inf"} 3\n'
        'chars_gcount{j="a"} 3\nchars_gsum{j="a"} 250\n# EOF\n'
    )
    # Text 0.0.4 has no gauge histogram: written as prometheus_client writes one.
    assert write_text([family()]).decode() == (
        "# HELP chars Pages by characters.\n# TYPE chars histogram\n"
        'chars_bucket{j="a",le="0.0"} 1\nchars_bucket{j="a",le="+Inf"} 3\n'
        "# HELP chars_gcount Pages by characters.\n# TYPE chars_gcount gauge\n"
        'chars_gcount{j="a"} 3\n'
        "# HELP chars_gsum Pages by characters.\n# TYPE chars_gsum gauge\n"
        'chars_gsum{j="a"} 250\n'
    )
    assert write_text([Family("chars", "gaugehistogram", "h.", [])]) == b""


PAGE_FIELDS = sorted(page())
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["2026-11-01T10:00:00Z", "0001-01-01T00:00:00+14:00", "", " "])
)
_values = st.recursive(_scalars, lambda children: st.lists(children, max_size=3), max_leaves=6)
_summaries = st.dictionaries(st.sampled_from(PAGE_FIELDS), _values, max_size=len(PAGE_FIELDS))


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(st.lists(_summaries | _values, max_size=12))
def test_any_summaries_give_consistent_totals(items):
    stats = stats_of(*items)
    assert stats.listed == len(items)
    assert 0 <= stats.empty <= stats.listed
    assert sum(stats.buckets) == stats.markdown_pages <= stats.listed
    assert stats.cumulative()[-1] == ("+Inf", stats.markdown_pages)
    # Never NaN or negative (a sum of huge counts may reach +Inf, which the writer shows).
    assert stats.markdown_chars >= 0
    assert stats.html_chars >= 0
    assert stats.last_scraped is None or math.isfinite(stats.last_scraped)
