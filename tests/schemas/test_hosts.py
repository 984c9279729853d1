"""``schemas.hosts``: a mock path goes to the real host its prefix stands for when the base URL
is a real host or a host map, and is sent as given to any other base URL (the mock)."""

from __future__ import annotations

import pytest

from nanobanana_mock import schemas
from nanobanana_mock.schemas import hosts

FAL = schemas.load("fal", "api")
SUBMIT = "/fal/queue/fal-ai/nano-banana-pro"
STATUS = "/fal/queue/fal-ai/nano-banana-pro/requests/r1/status?logs=1"
RUN = "/fal/run/fal-ai/nano-banana/edit"
STANDIN = "http://127.0.0.1:9001"


@pytest.mark.parametrize(
    ("base", "path", "expected"),
    [
        ("https://queue.fal.run", SUBMIT, "https://queue.fal.run/fal-ai/nano-banana-pro"),
        (
            "https://queue.fal.run",
            STATUS,
            "https://queue.fal.run/fal-ai/nano-banana-pro/requests/r1/status?logs=1",
        ),
        ("https://queue.fal.run", RUN, "https://fal.run/fal-ai/nano-banana/edit"),
        ("https://fal.run", SUBMIT, "https://queue.fal.run/fal-ai/nano-banana-pro"),
        ("HTTPS://Fal.run", RUN, "https://fal.run/fal-ai/nano-banana/edit"),
        ("http://127.0.0.1:8080", SUBMIT, "http://127.0.0.1:8080" + SUBMIT),
        ("http://127.0.0.1:8080", RUN, "http://127.0.0.1:8080" + RUN),
        ("http://fal.run.example", SUBMIT, "http://fal.run.example" + SUBMIT),
        (f"queue.fal.run={STANDIN}", SUBMIT, STANDIN + "/fal-ai/nano-banana-pro"),
        (f"queue.fal.run={STANDIN}/", RUN, "https://fal.run/fal-ai/nano-banana/edit"),
        (
            f"queue.fal.run={STANDIN}, fal.run=http://127.0.0.1:9002/gw",
            RUN,
            "http://127.0.0.1:9002/gw/fal-ai/nano-banana/edit",
        ),
    ],
)
def test_a_path_goes_to_the_host_its_prefix_stands_for(base: str, path: str, expected: str) -> None:
    assert hosts.url(FAL, base, path) == expected


def test_a_provider_without_hosts_is_sent_as_given() -> None:
    segmind = schemas.load("segmind", "api")
    assert hosts.layout(segmind, "https://api.segmind.com") is None
    assert hosts.url(segmind, "https://api.segmind.com", "/v2/x") == "https://api.segmind.com/v2/x"
    with pytest.raises(ValueError, match="and segmind has none"):
        hosts.url(segmind, f"queue.fal.run={STANDIN}", "/v2/x")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (f"queue.fal.rum={STANDIN}", "'queue.fal.rum' is no real host"),
        (f"queue.fal.run={STANDIN},queue.fal.run={STANDIN}", "given twice"),
        ("queue.fal.run=127.0.0.1:9001", "must start with http(s)://"),
        ("queue.fal.run=", "must start with http(s)://"),
        ("queue.fal.run=http://", "must start with http(s):// and name a host"),
        ("queue.fal.run=https://:9001/x", "must start with http(s):// and name a host"),
    ],
)
def test_a_bad_host_map_names_its_problem(text: str, problem: str) -> None:
    with pytest.raises(ValueError) as caught:
        hosts.parse_host_map(FAL, text)
    assert problem in str(caught.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://queue.fal.run/fal-ai/x/requests/1", "http://m:1/fal/queue/fal-ai/x/requests/1"),
        ("https://fal.run/fal-ai/x", "http://m:1/fal/run/fal-ai/x"),
        ("https://fal.run.evil.example/fal-ai/x", None),
        ("https://v3.fal.media/files/a.png", None),
        ("IN_QUEUE", None),
    ],
)
def test_a_real_host_url_moves_under_its_mock_prefix(url: str, expected: str | None) -> None:
    assert hosts.to_mock(FAL, url, "http://m:1") == expected


@pytest.mark.parametrize(
    "provider", [p for p in schemas.PROVIDERS if "hosts" in schemas.load(p, "api")]
)
def test_every_operation_lies_under_exactly_one_host_prefix(provider: str) -> None:
    api = schemas.load(provider, "api")
    for name, operation in api["operations"].items():
        under = [p for p in api["hosts"] if operation["path"].startswith(p + "/")]
        assert len(under) == 1, (name, operation["path"], under)


MOCK = "http://127.0.0.1:8080"
JOB = "/fal-ai/x/requests/1/status"


@pytest.mark.parametrize(
    ("text", "old", "new", "expected"),
    [
        ("https://queue.fal.run" + JOB, "https://queue.fal.run", MOCK, MOCK + "/fal/queue" + JOB),
        (MOCK + "/fal/queue" + JOB, MOCK, "https://fal.run", "https://queue.fal.run" + JOB),
        (
            "https://queue.fal.run" + JOB,
            "https://fal.run",
            f"queue.fal.run={STANDIN}",
            STANDIN + JOB,
        ),
        (STANDIN + JOB, f"queue.fal.run={STANDIN}", MOCK, MOCK + "/fal/queue" + JOB),
        (
            "https://v3.fal.media/files/a.png",
            "https://queue.fal.run",
            MOCK,
            "https://v3.fal.media/files/a.png",
        ),
        (
            MOCK + "/_mock/files/a.png",
            MOCK,
            "http://127.0.0.1:9",
            "http://127.0.0.1:9/_mock/files/a.png",
        ),
    ],
)
def test_a_url_is_rebased_from_one_layout_to_the_other(
    text: str, old: str, new: str, expected: str
) -> None:
    assert hosts.rebase(FAL, text, old, new) == expected


def test_a_long_bad_host_map_is_quoted_in_part() -> None:
    text = "x" * 100_000 + "=" + STANDIN
    with pytest.raises(ValueError) as caught:
        hosts.parse_host_map(FAL, text)
    assert "is no real host" in str(caught.value) and len(str(caught.value)) < 400
