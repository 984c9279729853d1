"""Paid, once per provider with a listing of its jobs (Gemini's batches) at its cheapest
request, under each path (/v1beta/ and /v1/): a batch of one request is created, then found
in the key's listing (pages followed by their ``nextPageToken``, every page checked against
its schema), deleted (checked against its schema), and then gone: reading it answers the
lifecycle's code for a job that is gone, and the listing no longer shows it.

It is deleted as soon as it is listed, whatever its state (the mock keeps a deleted batch's
worker busy until it would have ended, and charges it). A listing is read for at most
``MAX_PAGES`` pages; a batch not found by then is a breaking finding."""

from __future__ import annotations

import urllib.parse

import pytest

from nanobanana_mock.conformance.blocking import create_batch
from nanobanana_mock.conformance.cost import Case
from nanobanana_mock.conformance.probe import Probe

pytestmark = [
    pytest.mark.paid,
    pytest.mark.cases("provider", needs=("batch_list", "batch_create", "batch_delete")),
]
OK = 200
PAGE_SIZE = 20
MAX_PAGES = 25  # pages of a listing read before the batch is called missing
NAME_PREFIX = "batches/"  # a batch's name: batches/<id> (batch.json)


def test_a_new_job_is_listed_until_it_is_deleted(probe: Probe, case: Case, operation: str) -> None:
    twin = operation.removeprefix("batch_list")  # "" (/v1beta/) or "_stable" (/v1/)
    create, read, delete = (f"batch_{name}{twin}" for name in ("create", "get", "delete"))
    rid, _ = create_batch(probe, create, case.plan, case.body)
    pages = f"listed (within {MAX_PAGES} pages of {PAGE_SIZE})"
    shown = _listed(probe, operation, rid)
    probe.expect(operation, "/operations", pages, pages if shown else "not listed")
    deleted = probe.send(delete, request_id=rid)
    probe.check(delete, deleted, expected={OK})
    gone = probe.send(read, request_id=rid)
    probe.check(read, gone, expected={probe.expired_code(read)})
    if _listed(probe, operation, rid):
        probe.expect(operation, "/operations", "a deleted batch not listed", "still listed")
    probe.verdict()


def _listed(probe: Probe, operation: str, rid: str) -> bool:
    """Whether the key's listing shows batch ``rid``, read page by page (each checked)."""
    base = probe.url(operation)
    token: str | None = None
    for _ in range(MAX_PAGES):
        query = {"pageSize": PAGE_SIZE, **({"pageToken": token} if token else {})}
        page = probe.send(operation, url=f"{base}?{urllib.parse.urlencode(query)}")
        probe.check(operation, page, expected={OK})
        items = page.json.get("operations")
        rows = items if isinstance(items, list) else []
        names = [row.get("name") for row in rows if isinstance(row, dict)]
        if f"{NAME_PREFIX}{rid}" in names:
            return True
        found = page.json.get("nextPageToken")
        token = found if isinstance(found, str) and found else None
        if token is None:
            break
    return False
