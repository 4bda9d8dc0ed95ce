"""Unit tests of agent/sync/rpc.py (serving a request addressed to this
store), agent/sync/forwarding.py (sending one to the owner) and the
replicator's request callback (answering it). In process: real ledgers and
services; the NATS connection between them is a fake that calls the owner's
real ``rpc.handle``."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import nats.errors
import pytest
from structlog.testing import capture_logs

from agent.config import NatsConfig
from agent.errors import Conflict, NotFound, Unavailable
from agent.inputs import ReservationRequest
from agent.metrics import Metrics
from agent.sync import rpc, subjects, transfer_rpc
from agent.sync.forwarding import NatsForwarder
from agent.sync.presence import PeerTable
from agent.sync.replicator import Replicator
from tests import synckit
from tests.inproc import wait_until
from tests.synckit import FakeMsg, FakeNC, LocalStore, failures, fake_link, served_by

pytestmark = pytest.mark.anyio
local_store = synckit.local_store
SEED_ID = "550e8400-e29b-41d4-a716-446655440000"  # PROD-001: 10 on hand at store-001


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def call(store: LocalStore, op: str, req: Any) -> tuple[int, Any]:
    """``rpc.handle`` at ``store``; its reply decoded (whatever the status)."""
    payload = req if isinstance(req, bytes) else json.dumps(req).encode()
    reply = json.loads(await rpc.handle(store.service, store.replica, op, payload))
    return reply["status"], reply["body"]


async def stock_row(store: LocalStore, sku: str = "PROD-001") -> dict[str, Any]:
    [row] = (await store.service.availability(sku, "store-001"))["stores"]
    return row  # type: ignore[no-any-return]


def live_peers(*stores: str) -> Callable[[], dict[str, int]]:
    """A ``freshness`` source that has heard from ``stores`` just now: an
    asker with no data of its own still knows the owner exists."""
    return lambda: {s: synckit.now_ms() for s in stores}


def deadline_in(seconds: float) -> int:
    return time.time_ns() // 1_000_000 + int(seconds * 1000)


# --------------------------------------------------------------- rpc.handle
async def test_reserve_confirm_and_cancel_are_served_by_the_owners_service(
    local_store: Callable[..., LocalStore],
) -> None:
    owner = local_store("store-001")
    req = {
        "reservationId": "r-1",
        "productId": SEED_ID,
        "quantity": 2,
        "deadlineMs": deadline_in(5),
    }
    status, body = await call(owner, "reserve", req)
    assert (status, body["status"], body["storeId"], body["quantity"]) == (
        202,
        "PENDING",
        "store-001",
        2,
    )
    assert (await stock_row(owner))["reserved"] == 2
    # the same request again (a retry): the same reservation, not a second one
    status, body = await call(owner, "reserve", req)
    assert (status, body["message"]) == (200, "Reservation already exists")
    assert (await stock_row(owner))["reserved"] == 2

    status, body = await call(owner, "confirm", {"reservationId": "r-1", "orderId": "o-9"})
    assert (status, body["status"], body["orderId"]) == (200, "CONFIRMED", "o-9")
    row = await stock_row(owner)
    assert (row["quantity"], row["reserved"]) == (8, 0)

    await call(owner, "reserve", {"reservationId": "r-2", "productId": "PROD-001", "quantity": 3})
    assert (await stock_row(owner))["reserved"] == 3
    assert await call(owner, "cancel", {"reservationId": "r-2"}) == (204, None)
    assert (await stock_row(owner))["reserved"] == 0
    assert (await owner.service.get_reservation("r-2"))["status"] == "CANCELLED"


async def test_the_owners_own_refusals_come_back_with_their_status(
    local_store: Callable[..., LocalStore],
) -> None:
    owner = local_store("store-001")
    too_many = {"reservationId": "r-9", "productId": "PROD-001", "quantity": 11}
    status, body = await call(owner, "reserve", too_many)
    assert (status, body["available"], body["requested"]) == (409, 10, 11)
    status, body = await call(owner, "confirm", {"reservationId": "nope"})
    assert status == 404
    status, body = await call(owner, "reserve", {"productId": "PROD-001", "quantity": 1})
    assert (status, body["error"]) == (422, "reservationId: required")
    status, body = await call(owner, "reserve", {"reservationId": "r-9", "productId": "PROD-001"})
    assert (status, body["error"]) == (422, "quantity: must be an integer")
    status, body = await call(owner, "cancel", {"reservationId": ""})
    assert (status, body["error"]) == (422, "reservationId: required")


async def test_events_serves_our_own_events_of_a_seq_range(
    local_store: Callable[..., LocalStore],
) -> None:
    owner = local_store("store-001")
    status, body = await call(owner, "events", {"from": 2, "to": 4})
    assert status == 200
    assert [(e["id"], e["origin"], e["seq"]) for e in body["events"]] == [
        (f"store-001:{n}", "store-001", n) for n in (2, 3, 4)
    ]
    assert await call(owner, "events", {"from": 8, "to": 20}) == (200, {"events": []})
    status, body = await call(owner, "events", {"from": "2", "to": 4})
    assert (status, body["error"]) == (422, "from: must be an integer")


async def test_ping_names_the_store(local_store: Callable[..., LocalStore]) -> None:
    assert await call(local_store("store-007", demo=False), "ping", {}) == (
        200,
        {"storeId": "store-007"},
    )


async def test_digests_are_the_replicas_with_how_far_it_applied_each_origin(
    local_store: Callable[..., LocalStore],
) -> None:
    owner = local_store("store-001")  # demo data: 7 events of its own
    status, body = await call(owner, "digests", {})
    assert status == 200
    assert body == {"digests": await owner.service.digests(), "origins": {"store-001": 7}}
    assert set(body["digests"]) >= {"store-001", "catalog"}


async def test_a_request_past_its_deadline_is_refused_and_nothing_is_reserved(
    local_store: Callable[..., LocalStore],
) -> None:
    owner = local_store("store-001")
    before = await owner.replica.digests()
    req = {"reservationId": "late", "productId": "PROD-001", "quantity": 1}
    status, body = await call(owner, "reserve", {**req, "deadlineMs": deadline_in(-0.001)})
    assert status == 503
    assert body["error"] == "request arrived after its deadline; not applied"
    assert (await stock_row(owner))["reserved"] == 0
    with pytest.raises(NotFound):
        await owner.service.get_reservation("late")
    assert await owner.replica.digests() == before
    # in time, the same request is served
    status, _ = await call(owner, "reserve", {**req, "deadlineMs": deadline_in(5)})
    assert status == 202


async def test_the_budget_is_relative_so_a_skewed_askers_clock_does_not_matter(
    local_store: Callable[..., LocalStore],
) -> None:
    owner = local_store("store-001")
    req = {"reservationId": "skew", "productId": "PROD-001", "quantity": 1}
    # an asker 10 minutes behind: its deadlineMs is long past here, its budget is not
    skewed = {**req, "budgetMs": 2000, "deadlineMs": deadline_in(-600)}
    status, body = await call(owner, "reserve", skewed)
    assert (status, body["status"]) == (202, "PENDING")
    # a budget already spent on arrival: refused before it reaches the writer
    status, body = await call(owner, "reserve", {**req, "reservationId": "none", "budgetMs": 0})
    assert (status, body["error"]) == (503, "request arrived after its deadline; not applied")
    status, body = await call(owner, "reserve", {**req, "budgetMs": "soon"})
    assert (status, body["error"]) == (422, "budgetMs: must be an integer")


async def test_the_deadline_is_judged_when_the_writer_runs_the_command(tmp_path: Any) -> None:
    """The owner's monotonic clock jumps 5 s between the request's arrival and
    the writer reaching its command (as behind a long import): reserve,
    confirm and cancel are each refused and change nothing; in time, served."""
    from agent.ledger.local import open_ledger
    from agent.replica import Replica
    from agent.service import InventoryService

    readings: list[float] = []
    ledger = open_ledger(tmp_path / "l.db", "store-001", monotonic=lambda: readings.pop(0))
    service = InventoryService(ledger, reservation_ttl=600, outbox=asyncio.Event())
    service.load_demo_data()
    owner = LocalStore(
        ledger,
        Replica(ledger, outbox=asyncio.Event(), snapshot_dir=tmp_path),
        service,
        asyncio.Event(),
    )
    try:
        for op, req in (
            ("reserve", {"reservationId": "r-1", "productId": "PROD-001", "quantity": 1}),
            ("confirm", {"reservationId": "r-0"}),
            ("cancel", {"reservationId": "r-0"}),
        ):
            if op != "reserve":  # something to confirm or cancel, made in time
                readings[:] = [100.0, 100.1]
                made = {"reservationId": "r-0", "productId": "PROD-001", "quantity": 2}
                await call(owner, "reserve", {**made, "budgetMs": 500})
            before = await owner.replica.digests()
            readings[:] = [100.0, 105.0]  # on arrival; when the writer runs it
            status, body = await call(owner, op, {**req, "budgetMs": 500})
            assert status == 503, body
            nothing = "nothing was reserved" if op == "reserve" else "nothing was changed"
            assert body["error"] == (
                "store 'store-001' could not get to the request within the 0.5 s its "
                f"asker waits (its ledger was busy); {nothing}"
            )
            assert body["outcome"] == "refused"
            assert await owner.replica.digests() == before
            assert readings == []  # the clock was read on arrival and on the writer
        assert (await service.get_reservation("r-0"))["status"] == "PENDING"
        with pytest.raises(NotFound):
            await service.get_reservation("r-1")
        readings[:] = [100.0, 100.44]  # within 500 ms less the reply's margin
        assert (await call(owner, "cancel", {"reservationId": "r-0", "budgetMs": 500}))[0] == 204
    finally:
        ledger.close()


async def test_an_unknown_operation_is_refused_with_422(
    local_store: Callable[..., LocalStore],
) -> None:
    status, body = await call(local_store("store-001"), "drop-tables", {})
    assert (status, body["error"]) == (422, "unknown operation 'drop-tables'")


@pytest.mark.parametrize("payload", [b"[1, 2]", b'"reserve"', b"3"])
async def test_a_request_that_is_not_an_object_is_refused_with_422(
    local_store: Callable[..., LocalStore], payload: bytes
) -> None:
    status, body = await call(local_store("store-001"), "reserve", payload)
    assert (status, body["error"]) == (422, "request must be a JSON object")


@pytest.mark.parametrize("payload", [b"{not json", b"\xff\xfe", b"[" * 100_000])
async def test_a_request_that_is_not_json_is_refused_with_400_not_an_internal_error(
    local_store: Callable[..., LocalStore], payload: bytes
) -> None:
    """As the owner's HTTP API answers a body that is not JSON: 400, and no
    traceback logged as if the agent had failed."""
    with capture_logs() as logs:
        status, body = await call(local_store("store-001"), "reserve", payload)
    assert (status, body["error"]) == (400, "request is not valid JSON")
    assert [e for e in logs if e["log_level"] == "error"] == []


async def test_an_empty_request_is_an_empty_object(local_store: Callable[..., LocalStore]) -> None:
    status, body = await call(local_store("store-001", demo=False), "ping", b"")
    assert (status, body) == (200, {"storeId": "store-001"})


async def test_an_internal_error_answers_500_and_is_logged_with_its_traceback(
    local_store: Callable[..., LocalStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = local_store("store-001")

    async def broken(first: int, last: int) -> list[str]:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(owner.replica, "own_events", broken)
    with capture_logs() as logs:
        status, body = await call(owner, "events", {"from": 1, "to": 3})
    assert (status, body) == (500, {"error": "internal error"})  # no detail to the asker
    [entry] = [e for e in logs if e["event"] == "rpc request failed"]
    assert (entry["log_level"], entry["op"], entry["exc_info"]) == ("error", "events", True)


def test_parse_reply_passes_the_owners_error_on_and_refuses_garbage() -> None:
    assert rpc.parse_reply(rpc.reply_bytes(202, {"a": 1})) == (202, {"a": 1})
    with pytest.raises(rpc.RemoteError) as err:
        rpc.parse_reply(rpc.reply_bytes(409, {"error": "insufficient stock", "available": 1}))
    assert (err.value.status, err.value.body()) == (
        409,
        {"error": "insufficient stock", "available": 1},
    )
    with pytest.raises(Unavailable, match="unreadable reply"):
        rpc.parse_reply(b"<html>")
    with pytest.raises(Unavailable, match="unreadable reply"):
        rpc.parse_reply(b'{"body": {}}')


# ------------------------------------------------------------- forwarding
async def test_not_connected_the_forwarder_refuses_and_nothing_is_reserved(
    local_store: Callable[..., LocalStore],
) -> None:
    link = fake_link("store-002", FakeNC(), connected=False)
    here = local_store("store-002", forwarder=NatsForwarder(link, "default", 2.0))
    before = await here.replica.digests()
    with pytest.raises(Unavailable) as err:
        await here.service.reserve(
            ReservationRequest("PROD-001", 1, reservation_id="r-x", store_id="store-001")
        )
    assert err.value.status == 503
    assert "not connected to NATS; nothing was reserved" in err.value.message
    assert err.value.body()["owner"] == "store-001"
    assert link.nc.requests == []  # nothing was even asked
    with pytest.raises(NotFound):
        await here.service.get_reservation("r-x")
    assert await here.replica.digests() == before

    forward = NatsForwarder(link, "default", 2.0)
    with pytest.raises(Unavailable, match="nothing was changed"):
        await forward("store-001", "cancel", {"reservationId": "r-x"})
    link.connected, link.nc = True, None  # connected once, never a connection: the same
    with pytest.raises(Unavailable, match="not connected to NATS"):
        await forward("store-001", "confirm", {"reservationId": "r-x"})


async def test_a_forwarded_reservation_is_made_at_the_owner_within_its_deadline(
    local_store: Callable[..., LocalStore],
) -> None:
    owner = local_store("store-001")
    nc = FakeNC(served_by(owner))
    here = local_store(
        "store-002",
        demo=False,
        forwarder=NatsForwarder(fake_link("store-002", nc), "default", 2.0),
        freshness=live_peers("store-001"),
    )
    status, body = await here.service.reserve(
        ReservationRequest(SEED_ID, 2, reservation_id="fwd-1", store_id="store-001")
    )
    assert (status, body["storeId"], body["status"]) == (202, "store-001", "PENDING")
    [(subject, sent, timeout)] = nc.requests
    assert (subject, timeout) == ("inv.default.rpc.store-001.reserve", 2.0)
    assert sent["budgetMs"] == 2000  # relative to its arrival: no clock crosses the wire
    assert 0 < sent["deadlineMs"] - time.time() * 1000 <= 2000  # for owners not upgraded
    assert (await stock_row(owner))["reserved"] == 2
    # the owner's refusal comes back as it was
    with pytest.raises(rpc.RemoteError) as err:
        await here.service.reserve(ReservationRequest(SEED_ID, 50, store_id="store-001"))
    assert (err.value.status, err.value.body()["available"]) == (409, 8)
    assert isinstance(err.value, rpc.InventoryError) and not isinstance(err.value, Conflict)
    # confirm and cancel are forwarded to the owner named by the caller
    status, body = await here.service.confirm("fwd-1", "o-1", "tester", owner="store-001")
    assert (status, body["status"]) == (200, "CONFIRMED")
    assert [s for s, _, _ in nc.requests][-1] == "inv.default.rpc.store-001.confirm"


@pytest.mark.parametrize(
    ("error", "words", "outcome"),
    [
        # the server had no responder: the request went nowhere
        (
            nats.errors.NoRespondersError(),
            "(its agent is not connected); nothing was reserved",
            None,
        ),
        # sent, unanswered: it may have been applied
        (nats.errors.TimeoutError(), "did not answer within 1.5 s; the reservation may", "unknown"),
        (TimeoutError(), "did not answer within 1.5 s; the reservation may", "unknown"),
    ],
)
async def test_an_owner_that_does_not_answer_is_unavailable(
    error: Exception, words: str, outcome: str | None
) -> None:
    forward = NatsForwarder(fake_link("store-002", FakeNC(error=error)), "default", 1.5)
    req = {"reservationId": "r-1", "productId": "PROD-001", "quantity": 1}
    with pytest.raises(Unavailable) as err:
        await forward("store-001", "reserve", req)
    assert words in err.value.message
    assert err.value.body()["owner"] == "store-001"
    assert err.value.body().get("outcome") == outcome
    if outcome:
        assert "nothing was reserved" not in err.value.message
        assert err.value.body()["reservationId"] == "r-1"


@pytest.mark.parametrize(
    ("op", "words"),
    [
        ("confirm", "reservation r-1 may have been confirmed: check with"),
        ("cancel", "reservation r-1 may have been cancelled: check with"),
    ],
)
async def test_a_confirm_or_cancel_that_timed_out_may_have_been_applied(
    op: str, words: str
) -> None:
    forward = NatsForwarder(fake_link("store-002", FakeNC(error=TimeoutError())), "default", 1)
    with pytest.raises(Unavailable) as err:
        await forward("store-001", op, {"reservationId": "r-1"})
    assert f"did not answer within 1 s; {words} `inv reservation show r-1`" in err.value.message
    assert "nothing was changed" not in err.value.message
    assert err.value.body()["outcome"] == "unknown"


@pytest.fixture
def busy_writer() -> Any:
    """``busy_writer(store)``: a job that holds ``store``'s writer thread (as a
    300,000-row import does) until ``release()``; returns once it holds it."""
    release = threading.Event()
    tasks: list[asyncio.Task[Any]] = []

    async def hold(store: LocalStore) -> Callable[[], Any]:
        started = threading.Event()

        def long_import(conn: Any) -> None:
            started.set()
            release.wait(30)  # bounded: a failing test never hangs the suite

        tasks.append(asyncio.create_task(store.ledger.store.write(long_import)))
        assert await asyncio.to_thread(started.wait, 10), "the writer never took the job"

        async def done() -> None:
            release.set()
            await asyncio.gather(*tasks)

        return done

    yield hold
    release.set()


async def test_a_forwarded_reserve_stuck_behind_the_owners_writer_is_refused_not_made_late(
    local_store: Callable[..., LocalStore], busy_writer: Any
) -> None:
    """The hole: the owner checked the deadline when the request arrived, not
    when the write ran; behind a long import the reservation was made after
    the asker had told its user that nothing was reserved."""
    owner = local_store("store-001")
    nc = FakeNC(served_by(owner), timeouts=True)
    here = local_store(
        "store-002",
        demo=False,
        forwarder=NatsForwarder(fake_link("store-002", nc), "default", 0.2),
        freshness=live_peers("store-001"),
    )
    release = await busy_writer(owner)
    with pytest.raises(Unavailable) as err:
        await here.service.reserve(
            ReservationRequest(SEED_ID, 1, reservation_id="X", store_id="store-001")
        )
    # the asker cannot know: it says so, and names the reservation to look for
    assert err.value.status == 503
    assert err.value.message.startswith(
        "store 'store-001' did not answer within 0.2 s; the reservation may have been "
        "made as X: check with `inv reservation show X`"
    )
    assert "nothing was reserved" not in err.value.message
    assert {k: err.value.body()[k] for k in ("owner", "reservationId", "outcome")} == {
        "owner": "store-001",
        "reservationId": "X",
        "outcome": "unknown",
    }
    [(_, sent, _)] = nc.requests
    assert sent["budgetMs"] == 200  # relative: no clock of the asker's crosses the wire
    # the owner's writer gets to it past the budget: refused there, nothing made
    await release()
    [late] = nc.late
    reply = json.loads(await late)
    assert reply["status"] == 503, reply
    assert "nothing was reserved" in reply["body"]["error"]
    assert (await stock_row(owner))["reserved"] == 0
    with pytest.raises(NotFound):
        await owner.service.get_reservation("X")


# ------------------------------------------------- the replicator answering
def replicator(store: LocalStore, metrics: Metrics) -> Replicator:
    config = NatsConfig(servers=["nats://127.0.0.1:4222"])
    link = fake_link(store.store_id)
    return Replicator(
        config, link, PeerTable(store.store_id, 1.0), store.replica, store.service, metrics
    )


async def test_a_request_is_answered_on_its_reply_subject(
    local_store: Callable[..., LocalStore],
) -> None:
    store = local_store("store-001")
    r = replicator(store, Metrics())
    msg = FakeMsg("inv.default.rpc.store-001.events", b'{"from": 1, "to": 2}', reply="_INBOX.x")
    await r.answer(msg)
    [reply] = msg.responses
    assert [e["seq"] for e in rpc.parse_reply(reply)[1]["events"]] == [1, 2]
    # a request nobody waits for is served but not answered
    req = {"reservationId": "r-5", "productId": "PROD-001", "quantity": 1}
    silent = FakeMsg("inv.default.rpc.store-001.reserve", json.dumps(req).encode())
    await r.answer(silent)
    assert silent.responses == []
    assert (await stock_row(store))["reserved"] == 1


async def test_a_reply_that_cannot_be_sent_is_counted_and_logged_not_raised(
    local_store: Callable[..., LocalStore],
) -> None:
    store = local_store("store-001")
    metrics = Metrics()
    r = replicator(store, metrics)
    msg = FakeMsg(
        "inv.default.rpc.store-001.ping",
        b"{}",
        reply="_INBOX.x",
        error=ConnectionResetError("link dropped"),
    )
    with capture_logs() as logs:
        await r.answer(msg)
    assert failures(metrics, "respond") == 1
    [entry] = [e for e in logs if e["event"] == "reply not sent"]
    assert (entry["log_level"], entry["op"], entry["exc_info"]) == ("warning", "ping", True)
    assert entry["error"] == "link dropped"


async def test_a_request_stuck_on_the_writer_does_not_hold_back_the_next(
    local_store: Callable[..., LocalStore], busy_writer: Any
) -> None:
    """nats-py hands a subscription its next message only once the callback
    returns: each request is served in a task of its own, so one waiting on a
    busy writer neither delays the others nor starts their deadlines late."""
    store = local_store("store-001")
    r = replicator(store, Metrics())
    release = await busy_writer(store)
    req = {"reservationId": "r-6", "productId": "PROD-001", "quantity": 1, "budgetMs": 60_000}
    stuck = FakeMsg("inv.default.rpc.store-001.reserve", json.dumps(req).encode(), reply="_I.1")
    ping = FakeMsg("inv.default.rpc.store-001.ping", b"{}", reply="_I.2")

    def answered(msg: FakeMsg) -> Callable[[], Any]:
        async def check() -> list[bytes]:
            return msg.responses

        return check

    await r._on_request(stuck)  # returns at once: the writer is still busy
    await r._on_request(ping)
    await wait_until(answered(ping), timeout=5, what="the ping's answer")
    assert stuck.responses == []
    await release()
    await wait_until(answered(stuck), timeout=5, what="the reservation's answer")
    assert rpc.parse_reply(stuck.responses[0])[0] == 202


def test_every_transfer_op_is_one_subject_token_the_agent_serves() -> None:
    """The agent subscribes to ``rpc.<store>.*``: an op with a dot in it would
    reach nobody (no responders), and the step would look unreachable."""

    served = subjects.rpc("net", "store-001").split(".")
    for op in transfer_rpc.OPS:
        asked = subjects.rpc("net", "store-001", op).split(".")
        assert len(asked) == len(served) and asked[:-1] == served[:-1], op
