from __future__ import annotations

from datetime import timedelta

from federation.delivery import MAX_ATTEMPTS, Recipient, host_pause, inboxes, next_attempt


def test_final_and_retryable_statuses() -> None:
    assert next_attempt(1, 404) is None and next_attempt(1, 410) is None and next_attempt(1, 401) is None
    assert next_attempt(1, 429, 30) == timedelta(seconds=30)
    assert next_attempt(1, 503, 120) == timedelta(seconds=120)
    first, later = next_attempt(1, 500), next_attempt(6, None)
    assert first is not None and later is not None and later > first
    assert next_attempt(MAX_ATTEMPTS, 500) is None


def test_retries_span_about_two_days() -> None:
    total = sum((next_attempt(n, 500) or timedelta()).total_seconds() for n in range(1, MAX_ATTEMPTS))
    assert timedelta(days=1) < timedelta(seconds=total) < timedelta(days=4)


def test_hosts_pause_after_repeated_failures() -> None:
    assert host_pause(4) is None
    pause = host_pause(5)
    assert pause is not None and pause > timedelta(0)


def test_one_inbox_per_host_with_a_shared_inbox() -> None:
    recipients = [
        Recipient("https://a.example/u/1", "https://a.example/u/1/inbox", "https://a.example/inbox"),
        Recipient("https://a.example/u/2", "https://a.example/u/2/inbox", "https://a.example/inbox"),
        Recipient("https://a.example/u/3", "https://a.example/u/3/inbox", None),
        Recipient("https://b.example/u/1", "https://b.example/u/1/inbox", None),
        Recipient("https://b.example/u/2", "https://b.example/u/2/inbox", None),
    ]
    assert inboxes(recipients) == ["https://a.example/inbox", "https://b.example/u/1/inbox",
                                   "https://b.example/u/2/inbox"]  # fmt: skip
