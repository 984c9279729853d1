"""The simulator on its own: no HTTP, no app, a frozen virtual clock moved by hand."""

from __future__ import annotations

import random
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest

from nanobanana_mock.config import MockConfig
from nanobanana_mock.contracts import Model, contract
from nanobanana_mock.engine.clock import VirtualClock
from nanobanana_mock.engine.images import ImageCache, ImageSpec
from nanobanana_mock.engine.jobs import Failure, JobStore, State, Surface
from nanobanana_mock.engine.journal import redact
from nanobanana_mock.engine.quotas import Ledger
from nanobanana_mock.engine.simulation import (
    InsufficientCredits,
    NotCancellable,
    Simulator,
    UnknownJob,
    uuid4,
)
from nanobanana_mock.http import fingerprint

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
OWNER = fingerprint("key-a")
BODY = {"prompt": "a red fox", "seed": 42, "image_urls": ["https://a.io/1.png"] * 3}


@dataclass
class World:
    """What a simulator reads, without the app around it (``MockState`` in the mock)."""

    config: MockConfig
    clock: VirtualClock = field(default_factory=lambda: VirtualClock(speed=0))
    images: ImageCache = field(
        default_factory=lambda: ImageCache(10**7, executor=ThreadPoolExecutor(1))
    )
    ledger: Ledger = field(default_factory=Ledger)
    store: JobStore = field(init=False)
    rngs: dict[str, random.Random] = field(default_factory=dict)

    def __post_init__(self) -> None:
        config = self.config
        self.store = JobStore(config.workers, config.max_jobs, max_bytes=config.max_job_bytes)

    def rng(self, stream: str) -> random.Random:
        return self.rngs.setdefault(stream, random.Random(f"{self.config.seed}/{stream}"))


def simulator(**settings: Any) -> tuple[Simulator, World]:
    base = {
        "seed": 3,
        "workers": 1,
        "queue_seconds": 1.0,
        "processing_jitter": 0.0,
        "processing_seconds": {"*": 10.0},
    }
    world = World(MockConfig(**{**base, **settings}))
    return Simulator(world), world


def model(provider: str = "segmind", name: str = "nano-banana") -> Model:
    return contract(provider).models[name]


@dataclass
class Shape:
    failure: Failure | None = None
    extra_queue: float = 0.0
    extra_processing: float = 0.0
    image_scale: float = 1.0


# -- submit ----------------------------------------------------------------------------------


def test_submit_plans_and_stores_a_job_from_the_model_and_body() -> None:
    sim, world = simulator()
    job = sim.submit(model(), BODY, OWNER)
    assert UUID4.match(job.id)
    assert (job.provider, job.model, job.owner) == ("segmind", "nano-banana", OWNER)
    assert job.prompt == "a red fox"
    assert (job.seed, job.inputs) == (42, 3)
    assert job.cost == pytest.approx(0.04)
    assert (job.submitted_at, job.start_at, job.end_at) == (0.0, 1.0, 11.0)
    assert job.expires_at == contract("segmind").retention_seconds
    assert world.store.find("segmind", job.id, OWNER, 0.0) is job
    assert world.store.spent(OWNER) == pytest.approx(0.04)


def test_ids_and_images_are_drawn_from_the_seed() -> None:
    first = [simulator()[0].submit(model(), BODY, OWNER) for _ in range(2)]
    assert first[0].id == first[1].id
    assert first[0].image_seed == first[1].image_seed
    other = simulator(seed=4)[0].submit(model(), BODY, OWNER)
    assert other.id != first[0].id and other.image_seed != first[0].image_seed


def test_a_provider_draws_its_own_id_format() -> None:
    sim, _ = simulator()
    job = sim.submit(model("seaart", "nano_banana_pro"), BODY, OWNER, new_id=lambda rng: "id-7")
    assert (job.id, job.provider) == ("id-7", "seaart")
    assert UUID4.match(uuid4(random.Random(0)))


def test_jobs_queue_on_their_providers_lane() -> None:
    sim, _ = simulator()
    jobs = [sim.submit(model(), BODY, OWNER) for _ in range(3)]
    assert [(j.start_at, j.end_at) for j in jobs] == [(1.0, 11.0), (11.0, 21.0), (21.0, 31.0)]
    other = sim.submit(model("pixazo", "nano-banana-pro"), BODY, OWNER)
    assert (other.start_at, other.end_at) == (1.0, 11.0)  # another provider, its own workers
    assert [sim.queue_position(j, 0.0) for j in jobs] == [0, 1, 2]


def test_fault_rules_shape_the_job() -> None:
    sim, _ = simulator()
    failure = Failure("boom", surface=Surface.START)
    shape = Shape(failure=failure, extra_queue=5.0, extra_processing=2.0, image_scale=0.5)
    job = sim.submit(model(), BODY, OWNER, shape=shape)
    plain = simulator()[0].submit(model(), BODY, OWNER)
    assert (job.start_at, job.duration) == (6.0, 12.0)
    assert job.output.width == round(plain.output.width * 0.5)
    assert job.failure is failure
    assert sim.read("segmind", job.id, OWNER)[1] is State.QUEUED


def test_timings_are_worked_out_once_per_settings() -> None:
    sim, world = simulator()
    assert sim.timing(model()) == (10.0, 3600.0)
    world.config = MockConfig(processing_seconds={"segmind/*": 4.0}, retention_seconds={"*": 9})
    assert sim.timing(model()) == (4.0, 9.0)
    assert sim.timing(model("seaart", "nano_banana_pro")) == (59.09, 9.0)


# -- read ------------------------------------------------------------------------------------


def test_read_follows_virtual_time_and_counts_polls() -> None:
    sim, world = simulator()
    job = sim.submit(model(), BODY, OWNER)
    states = []
    for at in (0.0, 1.0, 10.9, 11.0, 500.0):
        world.clock.advance(at - world.clock.now())
        found, state = sim.read("segmind", job.id, OWNER)
        assert found is job
        states.append(state)
    assert states == [State.QUEUED, State.RUNNING, State.RUNNING, State.SUCCEEDED, State.SUCCEEDED]
    assert job.polls == 5
    sim.read("segmind", job.id, OWNER, poll=False)  # a result read is not a poll
    assert job.polls == 5


def test_a_failure_due_after_polls_comes_on_the_poll_that_reaches_it() -> None:
    sim, _ = simulator()
    job = sim.submit(model(), BODY, OWNER, shape=Shape(failure=Failure("x", after_polls=2)))
    assert sim.read("segmind", job.id, OWNER, poll=False)[1] is State.QUEUED
    assert sim.read("segmind", job.id, OWNER)[1] is State.QUEUED
    assert sim.read("segmind", job.id, OWNER)[1] is State.FAILED


@pytest.mark.parametrize(
    ("provider", "job_id", "owner", "model_name"),
    [
        ("segmind", "no-such-id", OWNER, None),
        ("segmind", "{id}", fingerprint("key-b"), None),  # another key's job
        ("pixazo", "{id}", OWNER, None),  # another provider's
        ("segmind", "{id}", OWNER, "nano-banana-pro"),  # another model's, when the route names one
    ],
    ids=["never-made", "other-key", "other-provider", "other-model"],
)
def test_a_job_not_theirs_is_unknown(
    provider: str, job_id: str, owner: str, model_name: str | None
) -> None:
    sim, _ = simulator()
    job = sim.submit(model(), BODY, OWNER)
    with pytest.raises(UnknownJob) as caught:
        sim.read(provider, job_id.format(id=job.id), owner, model_name)
    assert caught.value.reason == "unknown"
    assert caught.value.request_id == job_id.format(id=job.id)
    assert job.polls == 0


def test_an_expired_job_says_so() -> None:
    sim, world = simulator(retention_seconds={"*": 60})
    job = sim.submit(model(), BODY, OWNER)
    world.clock.advance(59.9)
    assert sim.read("segmind", job.id, OWNER)[1] is State.SUCCEEDED
    world.clock.advance(0.1)
    with pytest.raises(UnknownJob) as caught:
        sim.read("segmind", job.id, OWNER)
    assert caught.value.reason == "expired"
    sim.submit(model(), BODY, OWNER)  # a submit lets the expired job go; its fate is kept
    with pytest.raises(UnknownJob, match="expired"):
        sim.read("segmind", job.id, OWNER)


def test_an_evicted_job_says_so() -> None:
    sim, _ = simulator(max_jobs=1)
    first = sim.submit(model(), BODY, OWNER)
    sim.submit(model(), BODY, OWNER)
    with pytest.raises(UnknownJob) as caught:
        sim.read("segmind", first.id, OWNER)
    assert caught.value.reason == "evicted"


# -- cancel ----------------------------------------------------------------------------------


def test_cancel_frees_the_worker_and_replans_the_lane() -> None:
    sim, world = simulator()
    running, waiting = (sim.submit(model(), BODY, OWNER) for _ in range(2))
    world.clock.advance(5.0)
    assert sim.cancel("segmind", running.id, OWNER) is running
    assert sim.read("segmind", running.id, OWNER)[1] is State.CANCELLED
    assert (waiting.start_at, waiting.end_at) == (5.0, 15.0)  # it was to start at 11
    assert sim.read("segmind", waiting.id, OWNER)[1] is State.RUNNING


def test_cancelling_a_waiting_job_moves_the_ones_behind_it() -> None:
    sim, _ = simulator()
    jobs = [sim.submit(model(), BODY, OWNER) for _ in range(3)]
    sim.cancel("segmind", jobs[1].id, OWNER)
    assert (jobs[2].start_at, jobs[2].end_at) == (11.0, 21.0)
    assert sim.queue_position(jobs[2], 0.0) == 1


def test_a_terminal_job_is_not_cancellable() -> None:
    sim, world = simulator()
    job = sim.submit(model(), BODY, OWNER)
    world.clock.advance(11.0)
    with pytest.raises(NotCancellable) as caught:
        sim.cancel("segmind", job.id, OWNER)
    assert caught.value.state is State.SUCCEEDED
    sim.cancel("segmind", sim.submit(model(), BODY, OWNER).id, OWNER)
    with pytest.raises(NotCancellable, match="CANCELLED"):
        sim.cancel("segmind", world.store.jobs()[-1].id, OWNER)


def test_cancel_of_a_job_not_theirs_is_unknown() -> None:
    sim, _ = simulator()
    job = sim.submit(model("seaart", "nano_banana_pro"), BODY, OWNER)
    with pytest.raises(UnknownJob, match="unknown"):
        sim.cancel("seaart", job.id, OWNER, "nano_banana_2")  # ids are scoped to the endpoint
    assert sim.read("seaart", job.id, OWNER)[1] is State.QUEUED


# -- credits ---------------------------------------------------------------------------------


def test_a_job_the_ledger_cannot_cover_is_refused_and_draws_no_id() -> None:
    sim, world = simulator()
    world.ledger.set("key-a", 0.05)
    assert sim.remaining_credits(OWNER) == 0.05
    sim.submit(model(), BODY, OWNER, shown=redact("key-a"))
    with pytest.raises(InsufficientCredits) as caught:
        sim.submit(model(), BODY, OWNER, shown=redact("key-a"))
    assert (caught.value.balance, caught.value.cost) == (pytest.approx(0.01), 0.04)
    assert len(world.store) == 1
    world.ledger.set("key-a", 1.0)
    second = sim.submit(model(), BODY, OWNER, shown=redact("key-a"))
    unrefused = simulator()[0]
    assert second.id == [unrefused.submit(model(), BODY, OWNER) for _ in range(2)][1].id


def test_remaining_credits_without_a_ledger_are_notional() -> None:
    sim, _ = simulator(notional_credits=1.0)
    sim.submit(model(), BODY, OWNER)
    assert sim.remaining_credits(OWNER) == pytest.approx(0.96)
    assert sim.remaining_credits(fingerprint("key-b")) == 1.0


# -- images ----------------------------------------------------------------------------------


def test_image_specs_follow_the_job() -> None:
    sim, _ = simulator()
    job = sim.submit(model("segmind", "nano-banana-2"), {**BODY, "num_images": 2}, OWNER)
    specs = [sim.image_spec(job, i) for i in range(2)]
    assert [s.seed for s in specs] == [job.image_seed, job.image_seed + 1]
    assert {(s.width, s.height, s.fmt) for s in specs} == {
        (job.output.width, job.output.height, job.output.fmt)
    }
    assert specs[1].label == "segmind nano-banana-2 #2: a red fox"
    odd = sim.submit(model(), {"prompt": "\ud800 lone"}, OWNER)
    assert sim.image_spec(odd, 0).label.endswith("? lone")  # a lone surrogate cannot be drawn


async def test_image_bytes_are_rendered_once() -> None:
    sim, world = simulator()
    job = sim.submit(model(), {"prompt": "x", "output_format": "png"}, OWNER)
    data = await sim.image_bytes(job)
    assert data.startswith(b"\x89PNG")
    assert world.images.peek(sim.image_spec(job, 0)) == data
    assert isinstance(sim.image_spec(job, 0), ImageSpec)
    await world.images.close()


async def test_settle_waits_on_the_virtual_clock_until_the_job_ends() -> None:
    sim, world = simulator()
    job = sim.submit(model(), BODY, OWNER)
    world.clock.advance(11.0)
    await sim.settle(job)  # already past: answers at once
    assert sim.read("segmind", job.id, OWNER)[1] is State.SUCCEEDED


# -- listing and deleting ----------------------------------------------------------------------


def test_a_listing_shows_the_owners_jobs_of_a_kind_newest_first_and_deleted_ones_go() -> None:
    sim, world = simulator(max_jobs=4)
    gemini = model("gemini", "gemini-2.5-flash-image")
    a, b = (sim.submit(gemini, BODY, OWNER, kind="batch") for _ in range(2))
    sim.submit(gemini, BODY, OWNER)  # a generation, not a batch
    sim.submit(gemini, BODY, fingerprint("key-b"), kind="batch")  # another key's
    assert sim.newest("gemini", OWNER, "batch", None, 10) == [b, a]
    assert sim.newest("gemini", OWNER, "batch", b.seq, 10) == [a]
    assert sim.newest("gemini", OWNER, "batch", None, 1) == [b]
    with pytest.raises(UnknownJob):
        sim.delete("gemini", a.id, OWNER, "")  # the kind must match
    sim.delete("gemini", a.id, OWNER, "batch")
    assert sim.newest("gemini", OWNER, "batch", None, 10) == [b]
    with pytest.raises(UnknownJob) as gone:
        sim.read("gemini", a.id, OWNER, kind="batch")
    assert gone.value.reason == "deleted"
    assert a.state(5.0) is State.RUNNING  # deleted, not cancelled: it keeps its worker
    c = sim.submit(gemini, BODY, OWNER, kind="batch")  # 4 kept: nothing evicted
    assert (len(world.store), world.store.evicted) == (4, 0)
    d = sim.submit(gemini, BODY, OWNER, kind="batch")  # a's place let go, then b evicted
    assert (len(world.store), world.store.evicted) == (4, 1)
    assert sim.newest("gemini", OWNER, "batch", None, 10) == [d, c]
    fates = [world.store.fate(job.id, 0.0, "gemini", OWNER) for job in (a, b)]
    assert fates == ["deleted", "evicted"]


def test_jobs_deleted_still_count_against_max_jobs_until_let_go() -> None:
    sim, world = simulator(max_jobs=4)
    gemini = model("gemini", "gemini-2.5-flash-image")
    store = world.store
    for _ in range(50):  # a client deleting each batch it makes: the store stays bounded
        job = sim.submit(gemini, BODY, OWNER, kind="batch")
        sim.delete("gemini", job.id, OWNER, "batch")
    queued = sum(len(lane.queue) for lane in store._lanes.values())
    assert (len(store), queued, store.evicted) == (0, 4, 0)
    kept = [sim.submit(gemini, BODY, OWNER, kind="batch") for _ in range(4)]
    assert sim.newest("gemini", OWNER, "batch", None, 10) == kept[::-1]
    assert store.fate(job.id, 0.0, "gemini", OWNER) == "deleted"
