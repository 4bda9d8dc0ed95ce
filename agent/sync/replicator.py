"""The replicator: publishes our outbox to JetStream, applies peers' events,
answers and forwards requests, and keeps presence.

Everything runs as background tasks of the agent's event loop. The NATS
connection is made in its own task (``connect`` can block for minutes), so the
agent serves requests whether or not NATS is there; every write lands in
SQLite first and waits in the outbox until it is published.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from dataclasses import dataclass
from typing import Any

import nats
import nats.errors
import nats.js.errors
import structlog
from nats.js import api

from agent import hlc as hlc_mod
from agent.config import AgentConfig, redact_url
from agent.errors import Unavailable
from agent.ledger import queries, replication
from agent.metrics import Metrics
from agent.service import InventoryService
from agent.sync import bootstrap, rpc, subjects, validate

log = structlog.get_logger("agent.sync")

PUBLISH_BATCH = 1000
FETCH_BATCH = 500
# Under a stream of writes, a batch that went out less than BUSY ago means more
# are coming: wait LINGER so they go together. Every batch costs a read of the
# outbox and a write marking it published, whatever its size; a lone write
# (the last batch long gone) is published at once.
PUBLISH_BUSY = 0.005
PUBLISH_LINGER = 0.002


@dataclass
class Peer:
    store_id: str
    last_heartbeat_ms: int = 0
    known_seq: int = 0  # the peer's own newest seq, from its heartbeat
    last_delay_ms: float | None = None
    gap_since: float | None = None


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Replicator:
    def __init__(self, cfg: AgentConfig, service: InventoryService, metrics: Metrics) -> None:
        self.cfg = cfg
        self.ncfg = cfg.nats
        self.service = service
        self.metrics = metrics
        self.me = service.store_id
        self.net = self.ncfg.network
        self.nc: Any = None
        self.js: Any = None
        self.psub: Any = None  # the pull subscription bound to our durable consumer
        self.connected = False
        self.ready = False  # stream and consumer set up
        self.peers: dict[str, Peer] = {}
        self.applied: dict[str, dict[str, Any]] = {}
        self.published_total = 0
        self.applied_total = 0
        self.quarantined_total = 0
        self.last_error: str | None = None
        self.publish_blocked: str | None = None
        self.consumer_idle = False
        self.bootstrapped: dict[str, Any] | None = None
        self._last_error_log = 0.0
        self._tasks: list[asyncio.Task[Any]] = []
        self._subs: list[Any] = []
        self._stopping = False
        service.forwarder = self.forward
        service.freshness = self.freshness

    # --------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        self.applied = await self.service.store.read(replication.origins)
        self._tasks.append(asyncio.create_task(self._run(), name="replicator"))

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            # A cancellation can be lost inside a library: Python 3.11's
            # asyncio.wait_for drops it when the inner call ends at the same
            # moment, and nats-py's connect() then retries a dead server forever.
            # Ask again until the task ends (bounded: never hang the shutdown).
            for _ in range(20):
                if task.done():
                    break
                await asyncio.wait({task}, timeout=0.25)
                task.cancel()
            if not task.done():
                log.error("replication task did not stop", task=task.get_name())
                continue
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.psub is not None:
            # nobody fetches any more: a late pull status or message left in its
            # queue would hold drain() until its timeout. Unacked messages are
            # redelivered to the next run (applying is idempotent).
            with contextlib.suppress(Exception):
                await self.psub.unsubscribe()
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.nc.drain(), 5)
            with contextlib.suppress(Exception):
                await self.nc.close()

    def _spawn(self, coro: Any, name: str) -> None:
        self._tasks.append(asyncio.create_task(self._guard(coro, name), name=name))

    async def _guard(self, coro: Any, name: str) -> None:
        """A background loop that logs its errors and starts again; never dies silently."""
        while not self._stopping:
            try:
                await coro()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.last_error = f"{name}: {exc}"
                log.error("replication task failed; restarting", task=name, error=str(exc))
                await asyncio.sleep(1.0)

    def _connect_options(self) -> dict[str, Any]:
        n = self.ncfg
        opts: dict[str, Any] = {
            "servers": n.servers,
            "name": f"inv-agent {self.me}",
            "connect_timeout": 2,
            "reconnect_time_wait": n.reconnect_wait,
            "max_reconnect_attempts": -1,
            "ping_interval": n.ping_interval,
            "max_outstanding_pings": n.max_outstanding_pings,
            "allow_reconnect": True,
            "inbox_prefix": n.inbox_prefix or f"_INBOX.{self.me}",
            "error_cb": self._on_error,
            "disconnected_cb": self._on_disconnect,
            "reconnected_cb": self._on_reconnect,
            "closed_cb": self._on_disconnect,
        }
        if n.user:
            opts["user"], opts["password"] = n.user, n.password or ""
        if n.token:
            opts["token"] = n.token
        if n.creds:
            opts["user_credentials"] = n.creds
        if n.nkey_seed:
            opts["nkeys_seed"] = n.nkey_seed
        if n.tls_ca or n.tls_cert:
            ctx = ssl.create_default_context(cafile=n.tls_ca)
            if n.tls_cert:
                ctx.load_cert_chain(n.tls_cert, n.tls_key)
            opts["tls"] = ctx
        return opts

    async def _on_error(self, exc: Exception) -> None:
        error = str(exc) or exc.__class__.__name__
        # while NATS is away every reconnect attempt fails: log changes, not repeats
        if error != self.last_error or time.monotonic() - self._last_error_log > 60:
            log.warning("nats error", error=error)
            self._last_error_log = time.monotonic()
        self.last_error = error

    async def _on_disconnect(self) -> None:
        if self.connected:
            log.warning("nats disconnected")
        self.connected = False
        self.metrics.nats_connected.set(0)

    async def _on_reconnect(self) -> None:
        self.connected = True
        self.metrics.nats_connected.set(1)
        log.info("nats reconnected", server=self._server())
        self.service.outbox_signal.set()

    def _server(self) -> str | None:
        url = self.nc.connected_url if self.nc is not None else None
        return redact_url(f"{url.scheme}://{url.netloc}") if url else None

    async def _run(self) -> None:
        delay = 0.2
        while not self._stopping:
            try:
                self.nc = await nats.connect(**self._connect_options())
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.last_error = f"connect: {exc or exc.__class__.__name__}"
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        self.connected = True
        self.metrics.nats_connected.set(1)
        log.info("nats connected", server=self._server())
        self.js = self.nc.jetstream(timeout=5)
        while not self._stopping:
            try:
                await self._ensure_stream()
                await self._check_identity()
                await self._ensure_consumer()
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.last_error = f"setup: {exc or exc.__class__.__name__}"
                log.warning("stream setup failed; retrying", error=self.last_error)
                await asyncio.sleep(1.0)
        self._subs.append(
            await self.nc.subscribe(subjects.rpc(self.net, self.me), cb=self._on_request)
        )
        self._subs.append(
            await self.nc.subscribe(subjects.heartbeat(self.net), cb=self._on_heartbeat)
        )
        if await bootstrap.needed(self):
            self.bootstrapped = await bootstrap.run(self, 3 * self.ncfg.heartbeat_interval + 1)
            self.applied = await self.service.store.read(replication.origins)
        self.ready = True
        await self._release_held_back()
        self._spawn(self._publish_loop, "publisher")
        self._spawn(self._consume_loop, "consumer")
        self._spawn(self._heartbeat_loop, "heartbeat")
        self._spawn(self._repair_loop, "gap-repair")

    # --------------------------------------------------------------- stream
    async def _ensure_stream(self) -> None:
        config = api.StreamConfig(
            name=self.ncfg.stream,
            subjects=[subjects.all_events(self.net)],
            storage=api.StorageType.FILE,
            retention=api.RetentionPolicy.LIMITS,
            num_replicas=self.ncfg.stream_replicas,
            duplicate_window=120.0,
        )
        try:
            info = await self.js.stream_info(self.ncfg.stream)
        except nats.js.errors.NotFoundError:
            await self.js.add_stream(config)
            log.info("stream created", stream=self.ncfg.stream)
            return
        if subjects.all_events(self.net) not in (info.config.subjects or []):
            config.subjects = [*(info.config.subjects or []), subjects.all_events(self.net)]
            await self.js.update_stream(config)

    async def _check_identity(self) -> None:
        """If the stream holds newer events of this store than our ledger (a
        ledger restored from an older backup), take them back from the stream
        before publishing anything: they were acknowledged to someone once.
        If the stream's events disagree with ours at the same seq (another
        node runs with our store id, or we wrote after a restore), publishing
        would reuse event ids: refuse and say so."""
        subject = subjects.events(self.net, self.me)
        try:
            msg = await self.js.get_last_msg(self.ncfg.stream, subject)
        except nats.js.errors.NotFoundError:
            return
        try:
            last = json.loads(msg.data)
            stream_seq, stream_hlc = int(last["seq"]), int(last["hlc"])
        except (ValueError, KeyError, TypeError):
            return
        local = await self.service.store.read(replication.own_seq_hlcs, self.me)
        if stream_seq <= max(local, default=0):
            if local.get(stream_seq, stream_hlc) == stream_hlc:
                return  # the stream is behind us or level: the outbox will catch up
            newer, clash = [], stream_seq
        else:
            newer, clash = await self._own_events_in_stream(subject, local)
        if clash:
            self.publish_blocked = (
                f"the stream holds events of {self.me} that differ from this ledger's "
                f"(seq {clash}): another agent uses this store id, or this ledger was restored "
                "from an old copy and written to since; not publishing (see docs/OPERATIONS.md)"
            )
        elif newer and newer[0]["seq"] != max(local, default=0) + 1:
            self.publish_blocked = (
                f"this ledger has events of {self.me} up to seq {max(local, default=0)} but the "
                f"stream only keeps them from seq {newer[0]['seq']}: the events between are "
                "lost to it; not publishing (see docs/OPERATIONS.md)"
            )
        else:
            for e in newer:
                self.service.clock.observe(e["hlc"])
            n = await self.service.write(replication.recover_own, newer)
            log.warning("own events recovered from the stream", count=n, up_to=stream_seq)
            return
        log.error("identity conflict", detail=self.publish_blocked)

    async def _own_events_in_stream(
        self, subject: str, local: dict[int, int]
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Our events kept in the stream that the ledger lacks, and the first
        seq at which the stream and the ledger disagree (None if they agree)."""
        config = api.ConsumerConfig(
            deliver_policy=api.DeliverPolicy.ALL,
            ack_policy=api.AckPolicy.NONE,
            inactive_threshold=30.0,
        )
        psub = await self.js.pull_subscribe(subject, stream=self.ncfg.stream, config=config)
        newer: list[dict[str, Any]] = []
        try:
            while True:
                try:
                    msgs = await asyncio.wait_for(psub.fetch(500, timeout=2.0), 10.0)
                except (TimeoutError, nats.errors.TimeoutError):
                    break
                for m in msgs:
                    checked = validate.check(
                        m.subject, m.data, now_ms(), int(self.ncfg.max_clock_skew * 1000)
                    )
                    if isinstance(checked, validate.Rejected):
                        continue
                    seq = checked["seq"]
                    if seq in local:
                        if local[seq] != checked["hlc"]:
                            return [], seq
                    else:
                        newer.append(checked)
                if msgs and msgs[-1].metadata.num_pending == 0:
                    break
        finally:
            with contextlib.suppress(Exception):
                await psub.unsubscribe()
        return sorted(newer, key=lambda e: e["seq"]), None

    async def _ensure_consumer(self) -> None:
        durable = subjects.durable_name(self.me)
        config = api.ConsumerConfig(
            durable_name=durable,
            name=durable,
            # one ack per fetched batch, not per message (a consumer made with
            # AckPolicy.EXPLICIT by an older agent is recreated below)
            ack_policy=api.AckPolicy.ALL,
            deliver_policy=api.DeliverPolicy.ALL,
            ack_wait=30.0,
            max_ack_pending=20000,
            max_deliver=-1,
        )
        follow = [s for s in self.ncfg.follow if s != self.me]
        if follow:
            config.filter_subjects = [subjects.events(self.net, s) for s in follow]
        else:
            config.filter_subject = subjects.all_events(self.net)
        try:
            await self.js.add_consumer(self.ncfg.stream, config)
        except nats.js.errors.APIError as exc:
            # an incompatible old definition: recreate it (applying is idempotent)
            log.warning("recreating consumer", consumer=durable, error=str(exc))
            await self.js.delete_consumer(self.ncfg.stream, durable)
            await self.js.add_consumer(self.ncfg.stream, config)
        self.psub = await self.js.pull_subscribe_bind(durable=durable, stream=self.ncfg.stream)

    # ------------------------------------------------------------- publisher
    async def _publish_loop(self) -> None:
        signal = self.service.outbox_signal
        last_batch = 0.0
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(signal.wait(), 1.0)
            if time.monotonic() - last_batch < PUBLISH_BUSY:
                await asyncio.sleep(PUBLISH_LINGER)
            signal.clear()
            if not self.connected or self.publish_blocked:
                continue
            while await self._publish_batch() == PUBLISH_BATCH:
                pass
            last_batch = time.monotonic()

    async def _publish_batch(self) -> int:
        # read on the loop: a range of the outbox index, quicker than a hop to
        # the read pool, and no slower than publishing what it returns
        batch = self.service.store.read_here(replication.unpublished, self.me, PUBLISH_BATCH)
        if not batch:
            return 0
        subject = subjects.events(self.net, self.me)
        futures = []
        try:
            for seq, body in batch:
                futures.append(
                    await self.js.publish_async(
                        subject,
                        body.encode(),
                        headers={"Nats-Msg-Id": f"{self.me}:{seq}"},
                        wait_stall=5.0,
                    )
                )
            results = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), 10.0)
        except (TimeoutError, nats.errors.Error, nats.js.errors.Error) as exc:
            for f in futures:
                f.cancel()
            self.last_error = f"publish: {exc or exc.__class__.__name__}"
            await asyncio.sleep(0.5)
            return -1
        acked = [
            seq for (seq, _), r in zip(batch, results, strict=True) if isinstance(r, api.PubAck)
        ]
        if acked:
            await self.service.store.write(replication.mark_published, self.me, acked)
            self.published_total += len(acked)
            self.metrics.events_published.inc(len(acked))
        if len(acked) < len(batch):
            await asyncio.sleep(0.5)
            return -1
        return len(batch)

    # -------------------------------------------------------------- consumer
    async def _consume_loop(self) -> None:
        while True:
            try:
                msgs = await asyncio.wait_for(self.psub.fetch(FETCH_BATCH, timeout=1.0), 5.0)
            except (TimeoutError, nats.errors.TimeoutError):
                self.consumer_idle = True
                continue
            except (nats.errors.ConnectionClosedError, nats.errors.Error) as exc:
                self.last_error = f"fetch: {exc or exc.__class__.__name__}"
                await asyncio.sleep(0.5)
                continue
            self.consumer_idle = False
            await self._apply_messages(msgs)

    async def _apply_messages(self, msgs: list[Any]) -> None:
        events, rejected = [], []
        now = now_ms()
        skew = int(self.ncfg.max_clock_skew * 1000)
        own, own_id = subjects.events(self.net, self.me), f"{self.me}:"
        for msg in msgs:
            if msg.subject == own and (msg.headers or {}).get("Nats-Msg-Id", "").startswith(own_id):
                # what our publisher sent, coming back: never applied here (we
                # are its only writer), so not even parsed. Anything else on our
                # subject is checked like any event (a forgery is quarantined).
                continue
            checked = validate.check(msg.subject, msg.data, now, skew)
            if isinstance(checked, validate.Rejected):
                rejected.append(
                    {
                        "eventId": checked.event_id,
                        "subject": msg.subject,
                        "reason": checked.reason,
                        "body": msg.data[:65536].decode("utf-8", "replace"),
                    }
                )
                log.warning(
                    "event quarantined",
                    reason=checked.reason,
                    detail=checked.detail,
                    event_id=checked.event_id,
                    subject=msg.subject,
                )
            elif checked["origin"] != self.me:
                events.append(checked)
        await self._apply(events, rejected)
        # AckPolicy.ALL: acknowledging the last message of the batch, once it
        # is committed, acknowledges every one before it
        with contextlib.suppress(Exception):
            await msgs[-1].ack()

    async def _apply(
        self, events: list[dict[str, Any]], rejected: list[dict[str, Any]]
    ) -> dict[str, int]:
        if not events and not rejected:
            # a batch of our own events coming back from the stream: no empty
            # ledger transaction, and no wake-up of the publisher for nothing
            return {"applied": 0, "duplicates": 0, "quarantined": 0}
        for e in events:
            self.service.clock.observe(e["hlc"])
        result: dict[str, int] = await self.service.write(replication.apply_batch, events, rejected)
        now = now_ms()
        for e in events:
            peer = self.peers.setdefault(e["origin"], Peer(e["origin"]))
            peer.last_delay_ms = max(0.0, now - hlc_mod.wall_ms(e["hlc"]))
            self.metrics.events_applied.labels(e["origin"]).inc()
            self.metrics.replication_lag.labels(e["origin"]).set(peer.last_delay_ms / 1000)
        for q in rejected:
            self.metrics.events_quarantined.labels(q["reason"]).inc()
        self.applied_total += result["applied"]
        self.quarantined_total += result["quarantined"]
        if events:
            self.applied = await self.service.store.read(replication.origins)
        return result

    async def _release_held_back(self) -> None:
        """Apply events held back for a newer schema, now that we may know it."""
        rows = await self.service.store.read(replication.held_back)
        ready, ids = [], []
        for qid, body in rows:
            event = json.loads(body)
            subject = subjects.events(self.net, str(event.get("origin")))
            checked = validate.check(
                subject, body.encode(), now_ms(), int(self.ncfg.max_clock_skew * 1000)
            )
            if not isinstance(checked, validate.Rejected):
                ready.append(checked)
                ids.append(qid)
        if ready:
            await self._apply(ready, [])
            await self.service.store.write(replication.release, ids)
            log.info("held-back events applied", count=len(ready))

    # -------------------------------------------------------------- presence
    async def _heartbeat_loop(self) -> None:
        while True:
            seq = await self.service.store.read(replication.published_seq, self.me)
            beat = {"storeId": self.me, "seq": seq, "at": now_ms()}
            if self.connected:
                with contextlib.suppress(Exception):
                    await self.nc.publish(
                        subjects.heartbeat(self.net, self.me), json.dumps(beat).encode()
                    )
            await asyncio.sleep(self.ncfg.heartbeat_interval)

    async def _on_heartbeat(self, msg: Any) -> None:
        try:
            beat = json.loads(msg.data)
            store = str(beat["storeId"])
            if store == self.me or subjects.store_of(msg.subject) != store:
                return
            peer = self.peers.setdefault(store, Peer(store))
            peer.last_heartbeat_ms = now_ms()
            peer.known_seq = max(peer.known_seq, int(beat.get("seq", 0)))
        except (ValueError, KeyError, TypeError):
            return

    # ------------------------------------------------------------ gap repair
    async def _repair_loop(self) -> None:
        """An origin's seq with a hole (lost or aged out of the stream, or a
        consumer that starts after the stream's first event) is fetched from
        the origin itself, which keeps all its events."""
        while True:
            await asyncio.sleep(1.0)
            if not self.connected or not self.consumer_idle:
                continue
            for origin, info in list(self.applied.items()):
                if origin == self.me:
                    continue
                peer = self.peers.setdefault(origin, Peer(origin))
                known = max(info["maxSeq"], peer.known_seq)
                if info["appliedSeq"] >= known:
                    peer.gap_since = None
                    continue
                if peer.gap_since is None:
                    peer.gap_since = time.monotonic()
                    continue
                if time.monotonic() - peer.gap_since >= 1.0:
                    await self._repair(origin, known)
            for store, peer in list(self.peers.items()):
                if store not in self.applied and peer.known_seq > 0 and self.consumer_idle:
                    if peer.gap_since is None:
                        peer.gap_since = time.monotonic()
                    elif time.monotonic() - peer.gap_since >= 2.0:
                        await self._repair(store, peer.known_seq)

    async def _repair(self, origin: str, known: int) -> None:
        seqs = await self.service.store.read(replication.missing, origin, known)
        if not seqs:
            return
        try:
            msg = await self.nc.request(
                subjects.rpc(self.net, origin, "events"),
                json.dumps({"from": seqs[0], "to": seqs[-1]}).encode(),
                timeout=self.ncfg.forward_timeout,
            )
            _, body = rpc.parse_reply(msg.data)
        except Exception as exc:
            self.last_error = f"gap repair from {origin}: {exc or exc.__class__.__name__}"
            return
        subject = subjects.events(self.net, origin)
        events, rejected = [], []
        for raw in body.get("events", []):
            checked = validate.check(
                subject, json.dumps(raw).encode(), now_ms(), int(self.ncfg.max_clock_skew * 1000)
            )
            if isinstance(checked, validate.Rejected):
                rejected.append(
                    {
                        "eventId": checked.event_id,
                        "subject": subject,
                        "reason": checked.reason,
                        "body": json.dumps(raw)[:65536],
                    }
                )
            else:
                events.append(checked)
        result = await self._apply(events, rejected)
        log.info("gap repaired", origin=origin, first=seqs[0], last=seqs[-1], **result)
        self.peers[origin].gap_since = None

    # ------------------------------------------------------------ forwarding
    async def _on_request(self, msg: Any) -> None:
        op = msg.subject.rsplit(".", 1)[-1]
        if op == "snapshot":
            reply = await bootstrap.serve(self)
        else:
            reply = await rpc.handle(self.service, op, msg.data)
        if msg.reply:
            with contextlib.suppress(Exception):
                await msg.respond(reply)

    async def forward(self, store: str, op: str, payload: dict[str, Any]) -> tuple[int, Any]:
        nothing = "nothing was reserved" if op == "reserve" else "nothing was changed"
        if not self.connected or self.nc is None:
            raise Unavailable(
                f"store {store!r} owns that stock and is unreachable: this agent is not "
                f"connected to NATS; {nothing}",
                owner=store,
            )
        timeout = self.ncfg.forward_timeout
        payload = {**payload, "deadlineMs": now_ms() + int(timeout * 1000)}
        try:
            msg = await self.nc.request(
                subjects.rpc(self.net, store, op), json.dumps(payload).encode(), timeout=timeout
            )
        except nats.errors.NoRespondersError as exc:
            raise Unavailable(
                f"store {store!r} owns that stock and is unreachable (its agent "
                f"is not connected); {nothing}",
                owner=store,
            ) from exc
        except (TimeoutError, nats.errors.TimeoutError) as exc:
            raise Unavailable(
                f"store {store!r} owns that stock and did not answer within "
                f"{timeout:g} s; {nothing} (it ignores requests past their "
                "deadline)",
                owner=store,
            ) from exc
        return rpc.parse_reply(msg.data)

    # ---------------------------------------------------------------- status
    def live_peers(self) -> list[str]:
        """Peers heard from recently, most recent first."""
        stale = now_ms() - self.ncfg.heartbeat_interval * 3 * 1000
        live = [p for p in self.peers.values() if p.last_heartbeat_ms >= stale]
        return [p.store_id for p in sorted(live, key=lambda p: -p.last_heartbeat_ms)]

    def freshness(self) -> dict[str, int]:
        """For each peer store: up to when this replica's view of it is known
        complete (its last heartbeat, if we have applied all it announced)."""
        out: dict[str, int] = {}
        for store, peer in self.peers.items():
            applied = self.applied.get(store, {})
            if peer.last_heartbeat_ms and applied.get("appliedSeq", 0) >= peer.known_seq:
                out[store] = peer.last_heartbeat_ms
            elif applied.get("lastHlc"):
                out[store] = hlc_mod.wall_ms(applied["lastHlc"])
        return out

    def health(self) -> dict[str, Any]:
        ok = self.connected and self.publish_blocked is None
        out: dict[str, Any] = {"ok": ok, "connected": self.connected, "server": self._server()}
        if self.publish_blocked:
            out["error"] = self.publish_blocked
        elif not self.connected and self.last_error:
            out["error"] = self.last_error
        return out

    async def status(self) -> dict[str, Any]:
        now = now_ms()
        origins = await self.service.store.read(replication.origins)
        stores = (set(origins) | set(self.peers)) - {self.me}
        stale_after = self.ncfg.heartbeat_interval * 3 * 1000
        peers = []
        for store in sorted(stores):
            o = origins.get(store, {})
            p = self.peers.get(store, Peer(store))
            state = "never seen"
            if p.last_heartbeat_ms:
                state = "up" if now - p.last_heartbeat_ms <= stale_after else "down"
            behind = max(0, p.known_seq - o.get("appliedSeq", 0))
            peers.append(
                {
                    "storeId": store,
                    "state": state,
                    "appliedSeq": o.get("appliedSeq", 0),
                    "knownSeq": max(p.known_seq, o.get("maxSeq", 0)),
                    "behind": behind,
                    "lastEventAt": queries.iso(hlc_mod.wall_ms(o["lastHlc"]))
                    if o.get("lastHlc")
                    else None,
                    "lastHeartbeatAt": queries.iso(p.last_heartbeat_ms)
                    if p.last_heartbeat_ms
                    else None,
                    "lagSeconds": round(p.last_delay_ms / 1000, 3)
                    if p.last_delay_ms is not None
                    else None,
                }
            )
        quarantine = await self.service.store.read(replication.quarantine_list, 20)
        return {
            "storeId": self.me,
            "mode": "replicated",
            "network": self.net,
            "stream": self.ncfg.stream,
            "connected": self.connected,
            "server": self._server(),
            "ready": self.ready,
            "outboxBacklog": await self.service.outbox_backlog(),
            "published": self.published_total,
            "applied": self.applied_total,
            "publishBlocked": self.publish_blocked,
            "bootstrappedFrom": self.bootstrapped,
            "lastError": self.last_error,
            "peers": peers,
            "quarantined": await self.service.store.read(replication.quarantine_count),
            "quarantine": quarantine,
            "digests": await self.service.digests(),
        }
