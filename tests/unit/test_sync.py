"""The follower's reading of a change stream: pure functions."""

from __future__ import annotations

import pytest

from node.workers.sync import SyncError, read_changes_page, with_smaller_page


def test_a_page_too_large_is_asked_for_again_smaller() -> None:
    url = "https://b.example/dataset/changes?after=abc&limit=200"
    assert with_smaller_page(url) == "https://b.example/dataset/changes?after=abc&limit=100"
    assert with_smaller_page("https://b.example/dataset/changes?since=x") == (
        "https://b.example/dataset/changes?since=x&limit=100")
    assert with_smaller_page("https://b.example/dataset/changes?limit=1") is None


def test_a_page_is_read_and_its_next_must_stay_on_its_host() -> None:
    page = {"type": "OrderedCollectionPage", "orderedItems": [{"id": "https://b.example/needs/x"}],
            "next": "https://b.example/dataset/changes?after=1"}  # fmt: skip
    items, following = read_changes_page(page, "b.example")
    assert items == page["orderedItems"] and following == page["next"]
    with pytest.raises(SyncError, match="not on b.example"):
        read_changes_page({**page, "next": "https://evil.example/x"}, "b.example")
    with pytest.raises(SyncError, match="OrderedCollectionPage"):
        read_changes_page({"type": "Note"}, "b.example")
    with pytest.raises(SyncError, match="embedded objects"):
        read_changes_page({"type": "OrderedCollectionPage", "orderedItems": ["https://b.example/needs/x"]}, "b.example")
