"""NATS security with a real nats-server: user/password, token, nkey and
operator-mode ``.creds`` logins from the agent's config file, per-store
permissions that stop one store from forging another's events, and TLS with a
private CA (server-verified, and mutual: a client certificate required).

An agent that NATS refuses keeps serving its own store; /health and
``sync status`` say why it is not connected."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest

from tests import synckit
from tests.helpers import Agent, free_port, wait_for
from tests.natsfix import NatsServer
from tests.synckit import (
    FAST,
    digests,
    ev_subject,
    on_hand,
    own_event_count,
    status,
    stock_write,
    wait_converged,
)

SEED_ID = "550e8400-e29b-41d4-a716-446655440000"  # PROD-001
STREAM = "INVENTORY"
BUCKET = "inv_default_snap"  # the snapshot object store (agent/sync/bootstrap.py)


# ------------------------------------------------------------------ helpers
@pytest.fixture
def servers() -> Iterator[Callable[..., NatsServer]]:
    """``servers(config_text)``: start a nats-server with extra config; all
    are killed and removed at teardown."""
    started: list[NatsServer] = []

    def factory(config: str) -> NatsServer:
        server = NatsServer(config=config)
        started.append(server)
        return server.start()

    yield factory
    for server in started:
        server.cleanup()


def agent_with_config(
    make_agent: Any, tmp_path: Path, store: str, nats: dict[str, Any], *, demo: bool = False
) -> Agent:
    """A real agent whose NATS settings come from a YAML config file."""
    cfg = tmp_path / f"{store}.yaml"
    cfg.write_text(json.dumps({"nats": nats}))  # JSON is YAML
    return make_agent(  # type: ignore[no-any-return]
        store, demo=demo, args=["--config", str(cfg)], env=FAST
    )


def connected(agent: Agent) -> bool:
    s = status(agent)
    return bool(s["connected"] and s["ready"])


def refused(agent: Agent, *words: str) -> str:
    """Wait until the agent reports NATS refusing it; the error text."""

    def error() -> str:
        s = status(agent)
        assert not s["connected"]
        return s["lastError"] if all(w in (s["lastError"] or "") for w in words) else ""

    return str(wait_for(error, what=f"{agent.store_id} to report {words}"))


def still_serves(agent: Agent, store: str) -> None:
    """Not connected, but its own store works: writes land in the outbox."""
    api = agent.client()
    assert api.get("/api/v1/products/PROD-001").status_code == 200
    r = api.post(
        "/api/v1/products/PROD-001/stock",
        json={"storeId": store, "operation": "add", "quantity": 3},
    )
    assert r.status_code == 202, r.text
    assert status(agent)["outboxBacklog"] >= 1
    r = api.get("/health")
    assert r.status_code == 503
    nats_check = r.json()["checks"]["nats"]
    assert nats_check["ok"] is False and nats_check["error"]


def nats_call(
    server: NatsServer, fn: Callable[[Any, Any], Awaitable[Any]], **auth: Any
) -> tuple[Any, list[str]]:
    """Run ``fn(nc, js)`` on a fresh nats-py connection (with ``auth``);
    returns its result and the errors the server sent."""
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    async def main() -> Any:
        nc = await nats.connect(
            servers=[server.url],
            connect_timeout=2,
            max_reconnect_attempts=2,
            error_cb=on_error,
            **auth,
        )
        try:
            return await fn(nc, nc.jetstream(timeout=2))
        finally:
            await nc.close()

    return asyncio.run(main()), errors


# --------------------------------------------------------- authentication
def test_user_and_password_from_the_config_file(
    servers: Callable[..., NatsServer], make_agent: Any, tmp_path: Path
) -> None:
    server = servers(
        "authorization { users = [\n"
        '  { user: "store-001", password: "pw-one-0123456789" }\n'
        '  { user: "store-002", password: "pw-two-0123456789" }\n'
        "] }\n"
    )
    a = agent_with_config(
        make_agent,
        tmp_path,
        "store-001",
        {"servers": [server.url], "user": "store-001", "password": "pw-one-0123456789"},
        demo=True,
    )
    b = agent_with_config(
        make_agent,
        tmp_path,
        "store-002",
        {"servers": [server.url], "user": "store-002", "password": "pw-two-0123456789"},
    )
    wait_for(lambda: connected(a) and connected(b), what="both agents to log in")
    wait_converged(a, b, stores=("store-001",))
    assert a.client().get("/health").json()["checks"]["nats"]["ok"] is True

    wrong = agent_with_config(
        make_agent,
        tmp_path,
        "store-003",
        {"servers": [server.url], "user": "store-002", "password": "not-the-password"},
        demo=True,
    )
    error = refused(wrong, "Authorization")
    assert "not-the-password" not in error
    still_serves(wrong, "store-003")
    # no login at all is refused too
    anonymous = agent_with_config(make_agent, tmp_path, "store-004", {"servers": [server.url]})
    refused(anonymous, "Authorization")
    assert anonymous.client().get("/api/v1/products").status_code == 200
    # and nothing of theirs reached the others
    stock_write(a, "PROD-001", "add", 1, "store-001")
    wait_converged(a, b)
    assert "store-003" not in digests(b)


def test_token_from_the_config_file(
    servers: Callable[..., NatsServer], make_agent: Any, tmp_path: Path
) -> None:
    server = servers('authorization { token: "s3cr3t-token-0123456789" }\n')
    a = agent_with_config(
        make_agent,
        tmp_path,
        "store-001",
        {"servers": [server.url], "token": "s3cr3t-token-0123456789"},
        demo=True,
    )
    wait_for(lambda: connected(a), what="the agent to log in with its token")
    stock_write(a, "PROD-001", "add", 2, "store-001")
    wait_for(lambda: status(a)["outboxBacklog"] == 0, what="a to publish")

    wrong = agent_with_config(
        make_agent,
        tmp_path,
        "store-002",
        {"servers": [server.url], "token": "guessed-token"},
        demo=True,
    )
    refused(wrong, "Authorization")
    still_serves(wrong, "store-002")


# ------------------------------------------------------- per-store permissions
def store_permissions(store: str) -> str:
    """What one store's agent needs, and no more (docs/ARCHITECTURE.md,
    "Deploying NATS for many stores"): its own event, heartbeat and alert
    subjects, requests to any store, its own durable consumer, the snapshot bucket,
    replies in its own inbox. No stream deletion, purge or update."""
    durable = f"agent-{store}"
    publish = [
        f"inv.default.ev.{store}",
        f"inv.default.hb.{store}",
        f"inv.default.alert.{store}",
        "inv.default.rpc.*.*",
        f"$JS.API.STREAM.INFO.{STREAM}",
        f"$JS.API.STREAM.CREATE.{STREAM}",
        f"$JS.API.STREAM.MSG.GET.{STREAM}",
        f"$JS.API.DIRECT.GET.{STREAM}.>",
        f"$JS.API.CONSUMER.CREATE.{STREAM}.{durable}",
        f"$JS.API.CONSUMER.CREATE.{STREAM}.{durable}.>",
        f"$JS.API.CONSUMER.INFO.{STREAM}.{durable}",
        f"$JS.API.CONSUMER.DELETE.{STREAM}.{durable}",
        f"$JS.API.CONSUMER.MSG.NEXT.{STREAM}.{durable}",
        "$JS.API.STREAM.NAMES",  # nats-py looks the bucket's stream up by subject
        f"$JS.API.STREAM.INFO.OBJ_{BUCKET}",
        f"$JS.API.STREAM.CREATE.OBJ_{BUCKET}",
        f"$JS.API.STREAM.MSG.GET.OBJ_{BUCKET}",
        f"$JS.API.STREAM.PURGE.OBJ_{BUCKET}",  # deleting a used snapshot
        f"$JS.API.DIRECT.GET.OBJ_{BUCKET}.>",
        f"$JS.API.CONSUMER.CREATE.OBJ_{BUCKET}",
        f"$JS.API.CONSUMER.CREATE.OBJ_{BUCKET}.>",
        f"$JS.API.CONSUMER.DELETE.OBJ_{BUCKET}.>",
        f"$JS.FC.OBJ_{BUCKET}.>",
        f"$O.{BUCKET}.>",
    ]
    subscribe = [
        "inv.default.hb.*",
        f"inv.default.rpc.{store}.*",
        f"_INBOX.{store}.>",
    ]
    return (
        f'{{ user: "{store}", password: "pw-{store}", permissions: {{\n'
        f"    publish: {{ allow: {json.dumps(publish)} }}\n"
        f"    subscribe: {{ allow: {json.dumps(subscribe)} }}\n"
        "    allow_responses: true } }\n"
    )


PERMISSIONS = (
    "authorization { users = [\n"
    + "".join(store_permissions(s) for s in ("store-001", "store-002", "store-003"))
    + '  { user: "operator", password: "pw-operator" }\n'  # the hub's admin: everything
    "] }\n"
)
OPERATOR = {"user": "operator", "password": "pw-operator"}
STORE_002 = {"user": "store-002", "password": "pw-store-002", "inbox_prefix": "_INBOX.store-002"}


def per_store_agent(make_agent: Any, tmp_path: Path, server: NatsServer, store: str) -> Agent:
    return agent_with_config(
        make_agent,
        tmp_path,
        store,
        {"servers": [server.url], "user": store, "password": f"pw-{store}"},
        demo=store == "store-001",
    )


def test_nkey_seed_from_the_config_file(
    servers: Callable[..., NatsServer], make_agent: Any, tmp_path: Path
) -> None:
    """NKey authentication: the server knows only the public key; the agent
    signs the server's challenge with the seed file named in its config."""
    import os

    import nkeys

    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    public = nkeys.from_seed(bytearray(seed)).public_key.decode()
    seed_file = tmp_path / "store-001.nk"
    seed_file.write_bytes(seed)
    seed_file.chmod(0o600)
    server = servers(f'authorization {{ users: [ {{ nkey: "{public}" }} ] }}\n')
    a = agent_with_config(
        make_agent,
        tmp_path,
        "store-001",
        {"servers": [server.url], "nkey_seed": str(seed_file)},
        demo=True,
    )
    wait_for(lambda: connected(a), what="the agent to log in with its nkey")
    stock_write(a, "PROD-001", "add", 2, "store-001")
    wait_for(lambda: status(a)["outboxBacklog"] == 0, what="a to publish")

    other = tmp_path / "other.nk"
    other.write_bytes(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER))
    wrong = agent_with_config(
        make_agent,
        tmp_path,
        "store-002",
        {"servers": [server.url], "nkey_seed": str(other)},
        demo=True,
    )
    refused(wrong, "Authorization")
    still_serves(wrong, "store-002")


def test_per_store_permissions_replicate_and_refuse_forgery(
    servers: Callable[..., NatsServer], make_agent: Any, tmp_path: Path
) -> None:
    server = servers(PERMISSIONS)
    a = per_store_agent(make_agent, tmp_path, server, "store-001")
    b = per_store_agent(make_agent, tmp_path, server, "store-002")
    wait_converged(a, b, stores=("store-001",))

    # replication both ways, and a reservation forwarded to the owner (request/reply)
    stock_write(a, "PROD-001", "add", 5, "store-001")
    stock_write(b, "PROD-002", "set", 8, "store-002")
    r = b.client().post(
        "/api/v1/reservations",
        json={
            "reservationId": "perm-1",
            "productId": SEED_ID,
            "storeId": "store-001",
            "quantity": 2,
        },
    )
    assert r.status_code == 202, r.text
    base = wait_converged(a, b, stores=("store-001", "store-002"))
    assert on_hand(b, "PROD-001", "store-001") == 15
    assert on_hand(a, "PROD-002", "store-002") == 8
    assert a.client().get("/api/v1/reservations/perm-1").json()["status"] == "PENDING"
    # a low-stock alert of store-001, on its own alert subject of the bus
    r = a.client().put("/api/v1/products/PROD-001/reorder", json={"reorderPoint": 100})
    assert r.status_code == 200, r.text
    wait_for(
        lambda: a.client().get("/health").json()["alertDeliveries"][0]["delivered"] == 1,
        what="store-001's alert on the bus",
    )
    stock_write(a, "PROD-002", "add", 1, "store-001")  # a round trip after the publish
    assert "permissions violation" not in a.log_path.read_text().lower()

    async def consumers(nc: Any, js: Any) -> dict[str, int]:
        out = {}
        for store in ("store-001", "store-002"):
            info = await js.consumer_info(STREAM, f"agent-{store}")
            out[store] = info.num_pending
        return out

    # each read the whole stream through its own consumer, with no $JS.ACK
    # permission (AckNone: where it is, is its ledger's checkpoint)
    wait_for(
        lambda: nats_call(server, consumers, **OPERATOR)[0] == {"store-001": 0, "store-002": 0},
        what="both consumers to have delivered everything",
    )
    assert not [line for line in server.log().splitlines() if "Permissions Violation" in line]

    async def count(nc: Any, js: Any) -> int:
        info = await js.stream_info(STREAM, subjects_filter=ev_subject("store-001"))
        return int((info.state.subjects or {}).get(ev_subject("store-001"), 0))

    before, _ = nats_call(server, count, **OPERATOR)
    assert before == own_event_count(a)

    # store-002's credentials forge store-001's next event: a count of 999,999
    seq = own_event_count(a) + 1
    forged = synckit.forged_count("store-001", seq)

    async def forge(nc: Any, js: Any) -> list[str]:
        outcomes = []
        try:
            await js.publish(ev_subject("store-001"), json.dumps(forged).encode(), timeout=1)
            outcomes.append("stored")
        except nats.errors.TimeoutError:
            outcomes.append("no ack")
        # nor may store-002 listen to requests meant for store-001, or destroy the stream
        await nc.subscribe("inv.default.rpc.store-001.*")
        for api in (f"STREAM.PURGE.{STREAM}", f"STREAM.DELETE.{STREAM}"):
            try:
                await nc.request(f"$JS.API.{api}", b"", timeout=1)
                outcomes.append(f"{api} answered")
            except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
                outcomes.append(f"{api} refused")
        await nc.flush()
        return outcomes

    outcomes, errors = nats_call(server, forge, **STORE_002)
    assert outcomes == [
        "no ack",
        f"STREAM.PURGE.{STREAM} refused",
        f"STREAM.DELETE.{STREAM} refused",
    ]
    # the -ERRs came before the flush's PONG: all four are in
    text = " ".join(errors).lower()  # nats-py lowercases the server's -ERR
    assert len(errors) == 4, errors
    assert f'permissions violation for publish to "{ev_subject("store-001")}"' in text
    assert 'permissions violation for subscription to "inv.default.rpc.store-001.*"' in text
    assert f'permissions violation for publish to "$js.api.stream.purge.{STREAM.lower()}"' in text
    assert f'permissions violation for publish to "$js.api.stream.delete.{STREAM.lower()}"' in text

    # nothing was stored, nothing changed anywhere, the stream is intact
    assert nats_call(server, count, **OPERATOR)[0] == before
    stock_write(a, "PROD-001", "add", 1, "store-001")  # the genuine store-001:<seq>
    after = wait_converged(a, b)
    assert after != base
    assert on_hand(b, "PROD-001", "store-001") == 16
    assert status(b)["quarantined"] == 0
    assert nats_call(server, count, **OPERATOR)[0] == before + 1


def test_per_store_permissions_allow_a_snapshot_bootstrap(
    servers: Callable[..., NatsServer], make_agent: Any, tmp_path: Path
) -> None:
    """A new store joining after the stream forgot its beginning restores a
    peer's snapshot through the object store, with only its own permissions."""
    server = servers(PERMISSIONS)
    a = per_store_agent(make_agent, tmp_path, server, "store-001")
    b = per_store_agent(make_agent, tmp_path, server, "store-002")
    wait_converged(a, b, stores=("store-001",))
    stock_write(b, "PROD-003", "set", 4, "store-002")
    wait_converged(a, b, stores=("store-001", "store-002"))

    async def purge(nc: Any, js: Any) -> None:
        await js.purge_stream(STREAM)

    nats_call(server, purge, **OPERATOR)
    c = per_store_agent(make_agent, tmp_path, server, "store-003")
    wait_for(lambda: status(c)["bootstrappedFrom"], timeout=20, what="store-003 to bootstrap")
    final = wait_converged(a, b, c, stores=("store-001", "store-002"))
    assert final == digests(a)
    assert on_hand(c, "PROD-003", "store-002") == 4
    assert not [line for line in server.log().splitlines() if "Permissions Violation" in line]


# ------------------------------------------------- operator mode: .creds
def _nats_jwt(signer: Any, subject: str, name: str, claims: dict[str, Any]) -> str:
    """A NATS JWT (v2): claims about ``subject`` signed by the ``signer`` nkey."""
    import base64
    import hashlib
    import time

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    body = {
        "iat": int(time.time()),
        "iss": signer.public_key.decode(),
        "name": name,
        "sub": subject,
        "nats": {**claims, "version": 2},
    }
    body["jti"] = base64.b32encode(hashlib.sha256(json.dumps(body).encode()).digest()).decode()
    head = b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    payload = b64(json.dumps(body).encode())
    return f"{head}.{payload}." + b64(signer.sign(f"{head}.{payload}".encode()))


def _keypair(prefix: int) -> tuple[bytes, Any]:
    import os

    import nkeys

    seed = nkeys.encode_seed(os.urandom(32), prefix)
    return seed, nkeys.from_seed(bytearray(seed))


def operator_setup(folder: Path) -> tuple[str, Callable[..., Path]]:
    """An operator with one account (JetStream enabled) and a system account:
    the server config text, and ``creds(name)`` writing a user's .creds file
    (its JWT signed by the account, and its seed); ``creds(name,
    trusted=False)``: signed by an account the operator never issued."""
    import nkeys

    _, operator = _keypair(nkeys.PREFIX_BYTE_OPERATOR)
    _, account = _keypair(nkeys.PREFIX_BYTE_ACCOUNT)
    _, system = _keypair(nkeys.PREFIX_BYTE_ACCOUNT)
    unlimited = {
        "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
        "wildcards": True, "conn": -1, "leaf": -1,
    }  # fmt: skip
    jetstream = {"mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1}
    op_jwt = _nats_jwt(operator, operator.public_key.decode(), "inv-op", {"type": "operator"})
    acct_jwt = _nats_jwt(
        operator,
        account.public_key.decode(),
        "inventory",
        {"type": "account", "limits": {**unlimited, **jetstream}},
    )
    sys_jwt = _nats_jwt(
        operator, system.public_key.decode(), "SYS", {"type": "account", "limits": unlimited}
    )
    config = (
        f'operator: "{op_jwt}"\n'
        f'system_account: "{system.public_key.decode()}"\n'
        "resolver: MEMORY\n"
        "resolver_preload: {\n"
        f'  {account.public_key.decode()}: "{acct_jwt}"\n'
        f'  {system.public_key.decode()}: "{sys_jwt}"\n'
        "}\n"
    )

    stranger = _keypair(nkeys.PREFIX_BYTE_ACCOUNT)[1]

    def creds(name: str, trusted: bool = True) -> Path:
        signer = account if trusted else stranger
        seed, user = _keypair(nkeys.PREFIX_BYTE_USER)
        user_jwt = _nats_jwt(
            signer,
            user.public_key.decode(),
            name,
            {"type": "user", "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1},
        )
        path = folder / f"{name}.creds"
        path.write_text(
            f"-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n"
            f"-----BEGIN USER NKEY SEED-----\n{seed.decode()}\n------END USER NKEY SEED------\n"
        )
        path.chmod(0o600)
        return path

    return config, creds


def test_creds_file_logs_in_to_an_operator_mode_server(
    servers: Callable[..., NatsServer], make_agent: Any, tmp_path: Path
) -> None:
    """Decentralised auth: the server trusts an operator; the agent presents
    the user JWT from its .creds file and signs the challenge with its seed."""
    config, creds = operator_setup(tmp_path)
    server = servers(config)
    a = agent_with_config(
        make_agent,
        tmp_path,
        "store-001",
        {"servers": [server.url], "creds": str(creds("store-001"))},
        demo=True,
    )
    wait_for(lambda: connected(a), what="the agent to log in with its .creds")
    stock_write(a, "PROD-001", "add", 2, "store-001")
    wait_for(lambda: status(a)["outboxBacklog"] == 0, what="a to publish")

    # a user JWT signed by an account the operator never issued: refused
    forged = creds("store-002", trusted=False)
    wrong = agent_with_config(
        make_agent,
        tmp_path,
        "store-002",
        {"servers": [server.url], "creds": str(forged)},
        demo=True,
    )
    refused(wrong, "Authorization")
    still_serves(wrong, "store-002")


# --------------------------------------------------------------------- TLS
def make_pki(folder: Path) -> dict[str, Path]:
    """A private CA (``ca``), a server certificate for 127.0.0.1/localhost
    (``server.pem``, ``server.key``) and a client certificate for store-001
    (``client.pem``, ``client.key``), both signed by the CA; PEM files."""
    import trustme

    ca = trustme.CA()
    paths = {"ca": folder / "ca.pem"}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    issued = {
        "server": ca.issue_cert("127.0.0.1", "localhost"),
        "client": ca.issue_cert("store-001"),
    }
    for stem, cert in issued.items():
        paths[f"{stem}.pem"], paths[f"{stem}.key"] = folder / f"{stem}.pem", folder / f"{stem}.key"
        for blob in cert.cert_chain_pems:  # the leaf, then any intermediates
            blob.write_to_path(str(paths[f"{stem}.pem"]), append=True)
        cert.private_key_pem.write_to_path(str(paths[f"{stem}.key"]))
        paths[f"{stem}.key"].chmod(0o600)
    return paths


def test_tls_with_a_private_ca_from_the_config_file(
    servers: Callable[..., NatsServer], make_agent: Any, tmp_path: Path
) -> None:
    pki = make_pki(tmp_path)
    server = servers(
        f'tls {{ cert_file: "{pki["server.pem"]}", key_file: "{pki["server.key"]}" }}\n'
        'authorization { users = [ { user: "store-001", password: "pw-tls-0123456789" } ] }\n'
    )
    url = f"tls://127.0.0.1:{server.port}"
    a = agent_with_config(
        make_agent,
        tmp_path,
        "store-001",
        {
            "servers": [url],
            "user": "store-001",
            "password": "pw-tls-0123456789",
            "tls_ca": str(pki["ca"]),
        },
        demo=True,
    )
    wait_for(lambda: connected(a), what="the agent to connect over TLS")
    assert status(a)["server"] == url
    wait_for(lambda: status(a)["outboxBacklog"] == 0, what="a to publish over TLS")

    # without the CA the server's certificate is not trusted: no connection
    untrusting = agent_with_config(
        make_agent,
        tmp_path,
        "store-002",
        {"servers": [url], "user": "store-001", "password": "pw-tls-0123456789"},
        demo=True,
    )
    refused(untrusting, "CERTIFICATE_VERIFY_FAILED")
    still_serves(untrusting, "store-002")


def test_mutual_tls_the_server_admits_only_a_client_certificate_of_its_ca(
    servers: Callable[..., NatsServer], make_agent: Any, tmp_path: Path
) -> None:
    pki = make_pki(tmp_path)
    server = servers(
        f'tls {{ cert_file: "{pki["server.pem"]}", key_file: "{pki["server.key"]}", '
        f'ca_file: "{pki["ca"]}", verify: true }}\n'
    )
    url = f"tls://127.0.0.1:{server.port}"
    a = agent_with_config(
        make_agent,
        tmp_path,
        "store-001",
        {
            "servers": [url],
            "tls_ca": str(pki["ca"]),
            "tls_cert": str(pki["client.pem"]),
            "tls_key": str(pki["client.key"]),
        },
        demo=True,
    )
    wait_for(lambda: connected(a), what="the agent to connect with its client certificate")
    wait_for(lambda: status(a)["outboxBacklog"] == 0, what="a to publish over mutual TLS")

    async def stored() -> int:  # read back over mutual TLS, with the same client certificate
        ctx = ssl.create_default_context(cafile=str(pki["ca"]))
        ctx.load_cert_chain(str(pki["client.pem"]), str(pki["client.key"]))
        nc = await nats.connect(servers=[url], tls=ctx, connect_timeout=2)
        try:
            info = await nc.jetstream().stream_info(STREAM, subjects_filter=ev_subject("store-001"))
            return int((info.state.subjects or {}).get(ev_subject("store-001"), 0))
        finally:
            await nc.close()

    assert asyncio.run(stored()) == own_event_count(a) > 0

    # the same CA trusted, but no client certificate: the server refuses it
    anonymous = agent_with_config(
        make_agent,
        tmp_path,
        "store-002",
        {"servers": [url], "tls_ca": str(pki["ca"])},
        demo=True,
    )
    wait_for(
        lambda: not status(anonymous)["connected"] and status(anonymous)["lastError"],
        what="store-002 to be refused without a client certificate",
    )
    still_serves(anonymous, "store-002")
    assert any("TLS handshake error" in line for line in server.log().splitlines())


def test_through_a_leaf_node_the_agent_uses_the_hubs_jetstream_domain(
    make_agent: Any, tmp_path: Path
) -> None:
    """The topology for many stores: a store's agent talks to its own leaf
    node (no JetStream there), which links to the hub. JetStream answers
    only under the hub's domain then ($JS.hub.API), which ``nats.domain``
    names."""
    leaf_port = free_port()
    hub = NatsServer(
        jetstream="domain: hub", config=f'leafnodes {{ listen: "127.0.0.1:{leaf_port}" }}'
    )
    leaf = NatsServer(
        name="leaf",
        jetstream=None,
        config=f'leafnodes {{ remotes: [{{ url: "nats-leaf://127.0.0.1:{leaf_port}" }}] }}',
    )
    try:
        hub.start()
        leaf.start()
        a = agent_with_config(
            make_agent, tmp_path, "store-001", {"servers": [leaf.url], "domain": "hub"}, demo=True
        )
        wait_for(lambda: connected(a), what="the agent to reach the hub's stream via its leaf")
        stock_write(a, "PROD-001", "add", 2, "store-001")
        wait_for(lambda: status(a)["outboxBacklog"] == 0, what="a to publish through the leaf")

        async def stored(js: Any) -> int:
            return int((await js.stream_info(STREAM)).state.messages)

        assert synckit.with_js(hub, stored) >= 1  # in the hub's stream
    finally:
        leaf.cleanup()
        hub.cleanup()
