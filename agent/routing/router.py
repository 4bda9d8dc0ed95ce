"""The router: reserves at whichever store can, asking the owners one at a time.

Any agent routes, a store's or one a web shop runs with no stock of its own.
It ranks the candidates from its own replica (``ranking``), records the plan
in its ledger (``ledger.routings``) before asking anyone, then asks each
candidate in turn through the service (itself locally when it is one, the
others through the forwarder, as any reservation of another store's stock):
a grant ends the routing; a refusal, an owner out of reach or one that did
not answer in time moves on to the next.

Each store is asked under a reservation id derived from the request id and
the store (``domain.attempt_id``), so asking it again never reserves twice.
That is what makes the record safe to act on after a crash: a retry of a
routing left unfinished asks again, in the recorded order, and the store
that had granted says so. A retry of a finished routing answers what the
first request was answered. An attempt whose outcome is unknown (a timeout)
and which is not the granted one is left to ``cleanup`` to cancel.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import structlog

from agent.domain import ReservationStatus, attempt_id
from agent.errors import Conflict, Forbidden, InventoryError, Unavailable
from agent.inputs import ReservationRequest, RoutingRequest
from agent.ledger import queries, routings
from agent.ledger.routings import Answer, Context, NewRouting, PlannedAttempt
from agent.routing import answers, ranking
from agent.service import InventoryService

log = structlog.get_logger("agent.routing")
HELD = (ReservationStatus.PENDING, ReservationStatus.CONFIRMED)


def _ignore(outcome: str) -> None:
    return None


class Router:
    def __init__(
        self,
        service: InventoryService,
        *,
        budget_ms: int,
        cleanups: asyncio.Event | None = None,
        on_routing: Callable[[str], None] = _ignore,
    ) -> None:
        """``budget_ms``: how long one ask may take (the forwarder's timeout):
        the first cleanup of an unanswered ask is tried that long after the
        routing ends, when the owner no longer applies it. ``cleanups`` is
        set when a routing leaves one (the cleanup task waits on it)."""
        self._service = service
        self._store = service.ledger.store
        self._engine = service.ledger.engine
        self._budget_ms = budget_ms
        self._count = on_routing
        self._cleanups = cleanups or asyncio.Event()
        self._running: set[str] = set()  # request ids being routed by this process

    @property
    def store_id(self) -> str:
        return self._service.store_id

    @property
    def in_progress(self) -> int:
        """How many routings this process is running now."""
        return len(self._running)

    # ----------------------------------------------------------------- reads
    async def get(self, request_id: str) -> dict[str, Any]:
        return await self._store.read(routings.get, request_id)

    async def list_routings(
        self, status: str | None, cleanup: str | None, limit: int, id_prefix: str | None = None
    ) -> dict[str, Any]:
        return await self._store.read(routings.list_routings, status, cleanup, limit, id_prefix)

    # --------------------------------------------------------------- routing
    async def reserve(
        self, request: RoutingRequest, allowed: tuple[str, ...] | None = None
    ) -> tuple[int, dict[str, Any]]:
        """Route ``request``; ``allowed``: the stores the caller may reserve
        at (a store-limited token), None for every store. Answers (status,
        the granted reservation with its ``routing``); raises ``Conflict``
        (409) when no store grants, ``Unavailable`` (503) when none answered."""
        rid = request.request_id or self._engine.new_id()
        request = replace(request, request_id=rid, ttl=request.ttl or self._service.reservation_ttl)
        if rid in self._running:  # checked and claimed before any await
            raise Conflict(
                f"reservation request {rid!r} is being routed right now (an earlier request "
                "with the same id); ask again in a moment: the same id never reserves twice",
                inProgress=True,
            )
        self._running.add(rid)
        try:
            return await self._reserve(request, rid, allowed)
        finally:
            self._running.discard(rid)

    async def _reserve(
        self, request: RoutingRequest, rid: str, allowed: tuple[str, ...] | None
    ) -> tuple[int, dict[str, Any]]:
        ctx = await self._store.read(routings.context, request.ref, rid)
        fp = answers.fingerprint(ctx.sku, request)
        record = ctx.record
        if record is not None:
            if record["fingerprint"] != fp:
                raise Conflict(
                    f"reservation id {rid!r} was already used for a different routed "
                    "request; use a new id for a new reservation"
                )
            if record["status"] != "routing":
                return self._replay(record)
            # left unfinished by a crash: ask again, in the recorded order
            log.info("routing resumed", request_id=rid)
            plan = [
                (a["position"], a["store_id"], a["reservation_id"])
                for a in record["attempts"]
                if a["outcome"] != "skipped"
            ]
            total = len(record["attempts"])
            return await self._ask_in_turn(request, ctx.sku, rid, plan, total, resumed=True)
        planned = self._plan(request, ctx, rid, allowed)
        routing = NewRouting(
            rid,
            fp,
            ctx.sku,
            request.quantity,
            request.customer_id,
            int(request.ttl or 0),
            request.strategy,
            request.stores,
            request.near,
        )
        order = [(i, a.store_id, a.reservation_id) for i, a in enumerate(planned) if not a.skipped]
        now = self._engine.wall_ms()
        if not order:
            error = answers.refusal(request, ctx.sku, len(planned), asked=[])
            record = await self._store.write(
                routings.refused_outright, routing, planned, now, error
            )
            return self._end(record, rid)
        await self._store.write(routings.begin, routing, planned, order[0][0], now)
        return await self._ask_in_turn(request, ctx.sku, rid, order, len(planned), resumed=False)

    def _plan(
        self, request: RoutingRequest, ctx: Context, rid: str, allowed: tuple[str, ...] | None
    ) -> list[PlannedAttempt]:
        candidates = ctx.candidates
        if request.stores is not None:
            ranking.check_stores(request.stores, candidates)
            if allowed is not None and (outside := [s for s in request.stores if s not in allowed]):
                raise Forbidden(f"this token is not valid for store {outside[0]!r}")
        if allowed is not None:
            candidates = [c for c in candidates if c.store.store_id in allowed]
        near = ranking.resolve_near(request.near, request.strategy, ctx.candidates, self.store_id)
        ranked = ranking.rank(
            candidates, request.quantity, request.strategy, stores=request.stores, near=near
        )
        return [
            PlannedAttempt(r.store_id, attempt_id(rid, r.store_id), r.available_online, r.skipped)
            for r in ranked
        ]

    async def _ask_in_turn(
        self,
        request: RoutingRequest,
        sku: str,
        rid: str,
        order: list[tuple[int, str, str]],
        total: int,
        *,
        resumed: bool,
    ) -> tuple[int, dict[str, Any]]:
        """Ask each (position, store, reservation id) of ``order`` until one
        grants; every outcome is recorded before the next store is asked.
        ``total``: how many candidates the ranking had (skipped ones too)."""
        asked: list[tuple[str, str]] = []
        last: Answer | None = None
        if resumed and order:
            await self._store.write(routings.asking, rid, order[0][0], self._engine.wall_ms())
        for i, (position, store, aid) in enumerate(order):
            last, body = await self._ask(request, sku, position, store, aid)
            asked.append((store, last.outcome))
            if body is not None:
                record = await self._finish(rid, "granted", last, granted=body)
                return self._granted(record, body)
            if i + 1 < len(order):
                await self._store.write(
                    routings.answered, rid, last, self._engine.wall_ms(), order[i + 1][0]
                )
        nobody = bool(asked) and all(o in ("unreachable", "timeout") for _, o in asked)
        error = (
            answers.unreachable(request, sku, asked)
            if nobody
            else answers.refusal(request, sku, total, asked)
        )
        record = await self._finish(rid, "unreachable" if nobody else "refused", last, error=error)
        return self._end(record, rid)

    async def _ask(
        self, request: RoutingRequest, sku: str, position: int, store: str, aid: str
    ) -> tuple[Answer, dict[str, Any] | None]:
        """Ask ``store`` for the reservation: the answer, and the owner's
        reservation when it granted."""
        attempt = ReservationRequest(
            ref=sku,
            quantity=request.quantity,
            reservation_id=aid,
            store_id=store,
            customer_id=request.customer_id,
            ttl=request.ttl,
            channel="online",
            actor=request.actor,
        )
        try:
            status, body = await self._service.reserve(attempt)
        except InventoryError as exc:
            outcome = answers.outcome_of(exc)
            if outcome != "timeout":
                return Answer(position, outcome, exc.message), None
            # the forwarder's advice (check, retry with the attempt's id) is
            # not the client's to follow here: the cleanup settles it
            return Answer(
                position,
                outcome,
                f"no answer from {store!r} in time: the reservation may have been made "
                "there; it is cancelled automatically unless this store is the one granted",
            ), None
        if body.get("status") in HELD:
            return Answer(position, "granted"), {**body, "httpStatus": status}
        # asked again (a resumed routing) after its reservation ended there
        ended = str(body.get("status"))
        return Answer(
            position,
            "insufficient",
            f"reservation {aid} is {ended} at {store}; it cannot be granted again",
            ended="cancelled" if ended == ReservationStatus.CANCELLED else "expired",
        ), None

    async def _finish(
        self,
        rid: str,
        status: str,
        last: Answer | None,
        *,
        granted: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> dict[str, Any]:
        now = self._engine.wall_ms()
        view = (
            {k: v for k, v in granted.items() if k not in ("httpStatus", "message")}
            if granted
            else None
        )
        finish = functools.partial(
            routings.finish,
            now=now,
            cleanup_at=now + self._budget_ms,
            last=last,
            granted=view,
            error=error,
        )
        record: dict[str, Any] = await self._store.write(finish, rid, status)
        if any(a["cleanup"] == "pending" for a in record["attempts"]):
            self._cleanups.set()
        return record

    # --------------------------------------------------------------- answers
    def _granted(self, record: dict[str, Any], body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        created = body["httpStatus"] == 202
        self._log(record)
        self._count("granted")
        view = {k: v for k, v in body.items() if k != "httpStatus"}
        view["message"] = "Reservation accepted" if created else "Reservation already exists"
        return (202 if created else 200), {**view, "routing": routings.summary(record)}

    def _end(self, record: dict[str, Any], rid: str) -> tuple[int, dict[str, Any]]:
        """A routing that ended without a grant: its error (never returns)."""
        self._log(record)
        self._count(record["status"])
        kind = Unavailable if record["status"] == "unreachable" else Conflict
        raise kind(record["error"], routing=routings.summary(record))

    def _replay(self, record: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """A retry of a finished routing: its answer again, nothing asked."""
        self._count("replayed")
        summary = routings.summary(record)
        if record["status"] == "granted":
            now = self._store.read_here(
                _current_view, record["reservation_id"], self._engine.wall_ms()
            )
            view = now or record["granted"]
            return 200, {**view, "message": "Reservation already exists", "routing": summary}
        kind = Unavailable if record["status"] == "unreachable" else Conflict
        raise kind(
            f"routing {record['request_id']!r} already ended: {record['error']}; use a new "
            "reservationId to route again",
            routing=summary,
            replayed=True,
        )

    def _log(self, record: dict[str, Any]) -> None:
        attempts = [a for a in record["attempts"] if a["outcome"] not in ("planned", "skipped")]
        log.info(
            "reservation routed",
            request_id=record["request_id"],
            outcome=record["status"],
            store=record["store_id"],
            asked=[f"{a['store_id']}:{a['outcome']}" for a in attempts],
            skipped=sum(1 for a in record["attempts"] if a["outcome"] == "skipped"),
            cleanups=sum(1 for a in record["attempts"] if a["cleanup"] == "pending"),
        )


def _current_view(conn: sqlite3.Connection, rid: str | None, now: int) -> dict[str, Any] | None:
    """The granted reservation as this replica has it now, if it has it yet."""
    if rid is None:
        return None
    try:
        return queries.get_reservation(conn, rid, now)
    except InventoryError:
        return None
