"""Security of one agent: JWT roles and expiry on TCP, owner-only files, rate
limits, input limits, and secrets kept out of logs and status endpoints.

The rules run in-process (``tests.inproc``: TCP is a request with a port, the
socket one without); real ``inv-agent`` processes (and a nats-server) are kept
for what the processes say and log: no secret in their logs or status.
The socket file's own mode is checked on a real process in test_api_auth."""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests import inproc
from tests.helpers import token_command, wait_for
from tests.inproc import InProcAgent, wait_until
from tests.natsfix import NatsServer

SEED_ID = "550e8400-e29b-41d4-a716-446655440000"  # PROD-001
pytestmark = pytest.mark.anyio


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def secret_of(api_agent: InProcAgent) -> str:
    return (api_agent.data_dir / "jwt.secret").read_text().strip()


def crafted(api_agent: InProcAgent, role: str, exp_in: int, **claims: Any) -> dict[str, str]:
    """A token signed with the agent's own secret, with any expiry."""
    now = int(time.time())
    body = {"sub": "crafted", "role": role, "iat": now, "exp": now + exp_in, **claims}
    return bearer(jwt.encode(body, secret_of(api_agent), algorithm="HS256"))


async def stock_row(
    api_agent: InProcAgent, sku: str = "PROD-001", store: str = "store-001"
) -> tuple[int, int]:
    r = await api_agent.local.get(f"/api/v1/products/{sku}/availability", params={"storeId": store})
    assert r.status_code == 200, r.text
    row = r.json()["stores"][0]
    return row["quantity"], row["reserved"]


def forbidden(r: httpx.Response, *words: str) -> None:
    assert r.status_code == 403, (r.status_code, r.text)
    error = r.json()["error"]
    assert isinstance(error, str) and error
    for word in words:
        assert word in error, (word, error)


@pytest.fixture
def http(api_agent: InProcAgent) -> httpx.AsyncClient:
    """Over TCP, with no token unless a request brings one."""
    return api_agent.tcp()


# ------------------------------------------------------------- JWT on TCP
async def test_token_expiry_is_checked(api_agent: InProcAgent, http: httpx.AsyncClient) -> None:
    assert (
        await http.get("/api/v1/products", headers=crafted(api_agent, "viewer", 60))
    ).status_code == 200
    r = await http.get("/api/v1/products", headers=crafted(api_agent, "admin", -5))
    assert r.status_code == 401
    assert "expired" in r.json()["error"]
    # a token from `inv-agent token` carries the asked lifetime and stops working after it
    short = token_command(api_agent.data_dir, "shorty", "viewer", "--expires", "2s")
    claims = jwt.decode(short, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 2

    async def refused() -> bool:
        return (await http.get("/api/v1/products", headers=bearer(short))).status_code == 401

    await wait_until(refused, timeout=6, what="the 2 s token to expire")
    assert "expired" in (await http.get("/api/v1/products", headers=bearer(short))).json()["error"]
    # no token, or a token signed with another secret
    assert (await http.get("/api/v1/products")).status_code == 401
    other = jwt.encode(
        {"sub": "m", "role": "admin", "exp": int(time.time()) + 60}, "x" * 40, algorithm="HS256"
    )
    r = await http.get("/api/v1/products", headers=bearer(other))
    assert r.status_code == 401
    assert "invalid token" in r.json()["error"]


async def test_viewer_reads_but_every_write_is_403(
    api_agent: InProcAgent, http: httpx.AsyncClient
) -> None:
    viewer = bearer(api_agent.token("vera", "viewer"))
    for path in (
        "/api/v1/products",
        "/api/v1/products/PROD-001",
        "/api/v1/products/PROD-001/availability",
        "/api/v1/reservations",
        "/api/v1/sync/status",
    ):
        assert (await http.get(path, headers=viewer)).status_code == 200, path
    r = await http.post(
        "/api/v1/products/PROD-001/stock",
        headers=viewer,
        json={"storeId": "store-001", "operation": "add", "quantity": 5},
    )
    forbidden(r, "viewer", "clerk")
    r = await http.post(
        "/api/v1/reservations",
        headers=viewer,
        json={"productId": SEED_ID, "storeId": "store-001", "quantity": 1},
    )
    forbidden(r, "viewer", "clerk")
    r = await http.post("/api/v1/products", headers=viewer, json={"sku": "V-1", "name": "v"})
    forbidden(r, "viewer", "admin")
    assert await stock_row(api_agent) == (10, 0)
    assert (await api_agent.local.get("/api/v1/products/V-1")).status_code == 404


async def test_clerk_changes_stock_and_reservations_but_not_catalogue_or_imports(
    api_agent: InProcAgent, http: httpx.AsyncClient
) -> None:
    clerk = bearer(api_agent.token("carla", "clerk"))
    r = await http.post(
        "/api/v1/products/PROD-001/stock",
        headers=clerk,
        json={"storeId": "store-001", "operation": "add", "quantity": 5},
    )
    assert r.status_code == 202, r.text
    r = await http.post(
        "/api/v1/reservations",
        headers=clerk,
        json={"reservationId": "r-clerk-1", "productId": SEED_ID, "quantity": 3},
    )
    assert r.status_code == 202, r.text
    assert (
        await http.post("/api/v1/reservations/r-clerk-1/confirm", headers=clerk)
    ).status_code == 200
    r = await http.post(
        "/api/v1/reservations",
        headers=clerk,
        json={"reservationId": "r-clerk-2", "productId": SEED_ID, "quantity": 2},
    )
    assert r.status_code == 202, r.text
    assert (await http.delete("/api/v1/reservations/r-clerk-2", headers=clerk)).status_code == 204
    assert await stock_row(api_agent) == (12, 0)

    forbidden(
        await http.post("/api/v1/products", headers=clerk, json={"sku": "C-1", "name": "c"}),
        "clerk",
        "admin",
    )
    forbidden(
        await http.patch("/api/v1/products/PROD-001", headers=clerk, json={"price": 1.0}), "admin"
    )
    rows = [{"line": 2, "sku": "PROD-001", "storeId": "store-001", "quantity": 99}]
    forbidden(await http.post("/api/v1/imports/stock", headers=clerk, json={"rows": rows}), "admin")
    rows = [{"line": 2, "sku": "C-2", "name": "c"}]
    forbidden(
        await http.post("/api/v1/imports/products", headers=clerk, json={"rows": rows}), "admin"
    )
    assert await stock_row(api_agent) == (12, 0)
    assert (await api_agent.local.get("/api/v1/products/PROD-001")).json()["price"] == 599.99
    assert (await api_agent.local.get("/api/v1/products")).json()["pagination"]["total"] == 3


async def test_a_clerk_of_store_002_cannot_touch_store_001(
    api_agent: InProcAgent, http: httpx.AsyncClient
) -> None:
    clerk2 = bearer(api_agent.token("bob", "clerk", ["store-002"]))
    # its own store is fine
    r = await http.post(
        "/api/v1/products/PROD-001/stock",
        headers=clerk2,
        json={"storeId": "store-002", "operation": "add", "quantity": 1},
    )
    assert r.status_code == 202, r.text
    # store-001's stock: named, or by default (this agent is store-001)
    for body in (
        {"storeId": "store-001", "operation": "add", "quantity": 1},
        {"operation": "set", "quantity": 0},
    ):
        forbidden(
            await http.post("/api/v1/products/PROD-001/stock", headers=clerk2, json=body),
            "store-001",
        )
    for body in (
        {"productId": SEED_ID, "storeId": "store-001", "quantity": 1},
        {"productId": SEED_ID, "quantity": 1},
    ):
        forbidden(await http.post("/api/v1/reservations", headers=clerk2, json=body), "store-001")
    # a store-001 reservation made locally: store-002's clerk can neither confirm nor cancel it
    r = await api_agent.local.post(
        "/api/v1/reservations",
        json={
            "reservationId": "r-001",
            "productId": SEED_ID,
            "storeId": "store-001",
            "quantity": 4,
        },
    )
    assert r.status_code == 202, r.text
    forbidden(await http.post("/api/v1/reservations/r-001/confirm", headers=clerk2), "store-001")
    forbidden(await http.delete("/api/v1/reservations/r-001", headers=clerk2), "store-001")
    r = await http.get("/api/v1/reservations/r-001", headers=clerk2)  # reading is allowed
    assert r.status_code == 200
    assert r.json()["status"] == "PENDING"
    assert await stock_row(api_agent) == (10, 4)
    assert await stock_row(api_agent, store="store-002") == (6, 0)


async def test_admin_manages_the_catalogue_and_imports(
    api_agent: InProcAgent, http: httpx.AsyncClient
) -> None:
    admin = bearer(api_agent.token("ada", "admin"))
    r = await http.post(
        "/api/v1/products", headers=admin, json={"sku": "ADM-1", "name": "Admin made"}
    )
    assert r.status_code == 201, r.text
    r = await http.patch("/api/v1/products/ADM-1", headers=admin, json={"price": 12.5})
    assert r.status_code == 200, r.text
    rows = [{"line": 2, "sku": "ADM-2", "name": "Imported"}]
    r = await http.post("/api/v1/imports/products", headers=admin, json={"rows": rows})
    assert r.status_code == 200, r.text
    rows = [{"line": 2, "sku": "ADM-1", "storeId": "store-001", "quantity": 7}]
    r = await http.post("/api/v1/imports/stock", headers=admin, json={"rows": rows})
    assert r.status_code == 200, r.text
    assert await stock_row(api_agent, "ADM-1") == (7, 0)
    assert (await api_agent.local.get("/api/v1/products/ADM-2")).status_code == 200


async def test_the_ledger_and_secret_files_are_owner_only(
    api_agent: InProcAgent, http: httpx.AsyncClient
) -> None:
    """The ledger and the secret are the agent's own (the socket file's mode
    is a real process's: test_api_auth)."""

    def mode(path: Path) -> int:
        return stat.S_IMODE(os.stat(path).st_mode)

    # no token over the socket, even for admin work ...
    r = await api_agent.local.post("/api/v1/products", json={"sku": "SOCK-1", "name": "via socket"})
    assert r.status_code == 201, r.text
    # ... but TCP needs one for the same call
    r = await http.post("/api/v1/products", json={"sku": "SOCK-2", "name": "via tcp"})
    assert r.status_code == 401
    ledger = api_agent.data_dir / "ledger.db"
    secret = api_agent.data_dir / "jwt.secret"
    assert mode(ledger) == 0o600
    assert mode(secret) == 0o600
    for extra in ("ledger.db-wal", "ledger.db-shm"):
        path = api_agent.data_dir / extra
        if path.exists():
            assert mode(path) == 0o600, extra


# ----------------------------------------------------------- rate limits
async def test_rate_limit_is_per_token_with_socket_and_health_exempt(make_inproc: Any) -> None:
    api_agent = await make_inproc(
        "store-001", env={"INV_LIMITS_RATE_PER_MINUTE": "60", "INV_LIMITS_RATE_BURST": "10"}
    )
    first = bearer(api_agent.token("first", "viewer"))
    second = bearer(api_agent.token("second", "viewer"))
    http = api_agent.tcp()
    statuses = [(await http.get("/api/v1/products", headers=first)).status_code for _ in range(12)]
    assert statuses[:10] == [200] * 10
    assert statuses[10:] == [429, 429]
    r = await http.get("/api/v1/products", headers=first)
    assert r.status_code == 429
    assert r.headers["content-type"] == "application/json"
    assert "rate limit" in r.json()["error"]
    retry = r.headers["retry-after"]
    assert retry.isdigit() and 1 <= int(retry) <= 60, retry
    # another token has its own budget
    assert (await http.get("/api/v1/products", headers=second)).status_code == 200
    # /health is exempt
    assert {(await http.get("/health")).status_code for _ in range(30)} == {200}
    assert (await http.get("/api/v1/products", headers=first)).status_code == 429
    # the local socket is exempt: many requests, never a 429
    api = api_agent.local
    assert {(await api.get("/api/v1/products")).status_code for _ in range(100)} == {200}


# ---------------------------------------------------------- input limits
MAX_BODY = 65536


@pytest.fixture
async def small_body_agent(make_inproc: Any) -> InProcAgent:
    return await make_inproc(  # type: ignore[no-any-return]
        "store-001", env={"INV_LIMITS_MAX_BODY_BYTES": str(MAX_BODY)}
    )


async def test_bodies_over_the_limit_are_413_with_or_without_content_length(
    small_body_agent: InProcAgent,
) -> None:
    api_agent = small_body_agent
    admin = bearer(api_agent.token("ada", "admin"))
    big = json.dumps(
        {"rows": [{"line": i + 2, "sku": f"BIG-{i}", "name": "x" * 100} for i in range(1000)]}
    ).encode()
    assert len(big) > MAX_BODY

    async def chunked(data: bytes) -> AsyncIterator[bytes]:
        for i in range(0, len(data), 8192):
            yield data[i : i + 8192]

    http = api_agent.tcp()
    r = await http.post("/api/v1/imports/products", headers=admin, content=big)
    assert r.request.headers["content-length"] == str(len(big))
    assert r.status_code == 413, r.text
    assert str(MAX_BODY) in r.json()["error"]
    # streamed without a Content-Length (Transfer-Encoding: chunked)
    r = await http.post("/api/v1/imports/products", headers=admin, content=chunked(big))
    assert "content-length" not in r.request.headers
    assert r.request.headers["transfer-encoding"] == "chunked"
    assert r.status_code == 413, r.text
    assert str(MAX_BODY) in r.json()["error"]
    # a chunked body within the limit goes through
    small = json.dumps({"sku": "CHUNK-1", "name": "chunked"}).encode()
    r = await http.post("/api/v1/products", headers=admin, content=chunked(small))
    assert r.status_code == 201, r.text
    # the socket has the same limit
    r = await api_agent.local.post("/api/v1/imports/products", content=big)
    assert r.status_code == 413, r.text
    r = await api_agent.local.get("/api/v1/products", params={"limit": 1000})
    assert r.json()["pagination"]["total"] == 4  # the 3 seed products + CHUNK-1


async def test_out_of_bounds_input_is_422_naming_the_field(
    api_agent: InProcAgent, http: httpx.AsyncClient
) -> None:
    admin = bearer(api_agent.token("ada", "admin"))
    cases: list[tuple[str, str, dict[str, Any], str]] = [
        ("POST", "/api/v1/products", {"sku": "LONG-1", "name": "n" * 10_000}, "name"),
        ("PATCH", "/api/v1/products/PROD-001", {"description": "d" * 10_000}, "description"),
        (
            "POST",
            "/api/v1/products/PROD-001/stock",
            {"storeId": "store-001", "operation": "add", "quantity": 1_000_000_001},
            "quantity",
        ),
        (
            "POST",
            "/api/v1/products/PROD-001/stock",
            {"storeId": "store-001", "operation": "add", "quantity": 5, "reason": "r" * 10_000},
            "reason",
        ),
        (
            "POST",
            "/api/v1/reservations",
            {"productId": SEED_ID, "quantity": 10**12},
            "quantity",
        ),
        (
            "POST",
            "/api/v1/imports/products",
            {"rows": [{"line": 2, "sku": "LONG-2", "name": "n" * 10_000}]},
            "name",
        ),
    ]
    for method, path, body, field in cases:
        r = await http.request(method, path, headers=admin, json=body)
        assert r.status_code == 422, (path, r.status_code, r.text)
        assert field in r.json()["error"], (path, r.text)
    for path in (
        "/api/v1/products",
        "/api/v1/reservations",
        "/api/v1/conflicts",
        "/api/v1/products/PROD-001/history",
    ):
        r = await http.get(path, headers=admin, params={"limit": 100_000})
        assert r.status_code == 422, (path, r.status_code, r.text)
        assert "limit" in r.json()["error"], path
    # odd but harmless input is a 4xx too, never a 5xx
    odd = [
        await http.get("/api/v1/products/" + "P" * 5000, headers=admin),
        await http.get("/api/v1/products", headers=admin, params={"page": 10**30}),
        await http.post("/api/v1/products", headers=admin, content=b"\xff\xfe not json"),
        await http.post("/api/v1/products", headers=admin, json=["a", "list"]),
        await http.post(
            "/api/v1/reservations", headers=admin, json={"productId": SEED_ID, "quantity": 1.5}
        ),
    ]
    for r in odd:
        assert 400 <= r.status_code < 500, (r.request.url, r.status_code, r.text)
        assert r.json()["error"]
    assert await stock_row(api_agent) == (10, 0)
    assert (await api_agent.local.get("/api/v1/products")).json()["pagination"]["total"] == 3


# --------------------------------------------------------------- secrets
def test_secrets_never_appear_in_logs_or_status(make_agent: Any, tmp_path: Path) -> None:
    nats_password = "nats-pw-" + os.urandom(12).hex()
    jwt_secret = "jwt-secret-" + os.urandom(24).hex()
    wrong_password = "wrong-pw-" + os.urandom(12).hex()
    server = NatsServer(
        config=(
            "authorization { users = [\n"
            f'  {{ user: "store-001", password: "{nats_password}" }}\n'
            f'  {{ user: "store-002", password: "{nats_password}" }}\n'
            f'  {{ user: "store-003", password: "{nats_password}" }}\n'
            "] }\n"
        )
    ).start()
    try:
        good = tmp_path / "good.yaml"
        good.write_text(
            f"auth:\n  jwt_secret: {jwt_secret}\n"
            f"nats:\n  servers: [{server.url}]\n  user: store-001\n"
            f"  password: {nats_password}\n  heartbeat_interval: 0.5\n"
        )
        agent = make_agent(
            "store-001", tcp=True, args=["--config", str(good), "--log-level", "debug"]
        )
        # a second agent with a wrong password, and its URL carrying credentials too
        bad = tmp_path / "bad.yaml"
        url = f"nats://store-002:{wrong_password}@127.0.0.1:{server.port}"
        bad.write_text(f"auth:\n  jwt_secret: {jwt_secret}\nnats:\n  servers: ['{url}']\n")
        other = make_agent("store-002", tcp=True, demo=False, args=["--config", str(bad)])
        # a third agent whose (right) password is written into its server URL
        in_url = tmp_path / "in_url.yaml"
        url = f"nats://store-003:{nats_password}@127.0.0.1:{server.port}"
        in_url.write_text(f"auth:\n  jwt_secret: {jwt_secret}\nnats:\n  servers: ['{url}']\n")
        third = make_agent("store-003", tcp=True, demo=False, args=["--config", str(in_url)])

        api = agent.client()
        wait_for(
            lambda: api.get("/api/v1/sync/status").json()["connected"],
            what="the agent to connect with its password",
        )
        wait_for(
            lambda: third.client().get("/api/v1/sync/status").json()["connected"],
            what="the agent with credentials in its URL to connect",
        )
        wait_for(
            lambda: "uthorization" in str(other.client().get("/health").json()["checks"]["nats"]),
            what="the refused connection to show in /health",
        )
        token = agent.token("ada", "admin", "--config", str(good))
        assert jwt.decode(token, jwt_secret, algorithms=["HS256"])["sub"] == "ada"
        with httpx.Client(base_url=agent.url, timeout=30) as http:
            assert http.get("/api/v1/products", headers=bearer(token)).status_code == 200
            r = http.post(
                "/api/v1/products/PROD-001/stock",
                headers=bearer(token),
                json={"storeId": "store-001", "operation": "add", "quantity": 1},
            )
            assert r.status_code == 202
            # failed authentication, including a client sending the secret itself
            for header in (
                f"Bearer {jwt_secret}",
                f"Bearer {nats_password}",
                f"Basic {nats_password}",
                f"Bearer {token[:-4]}abcd",
                jwt_secret,
            ):
                r = http.get("/api/v1/products", headers={"Authorization": header})
                assert r.status_code == 401
                assert jwt_secret not in r.text and nats_password not in r.text
            outputs = {}
            peers = (("agent", http), ("peer", other.client()), ("third", third.client()))
            for name, client in peers:
                for path in ("/health", "/metrics", "/api/v1/sync/status", "/api/v1/agent"):
                    r = client.get(path, headers=bearer(token))
                    assert r.status_code in (200, 503), (path, r.text)
                    outputs[f"{name} {path}"] = r.text
        # everything the agents said and logged, after a clean stop
        agent.stop()
        other.stop()
        third.stop()
        outputs["agent log"] = agent.log_path.read_text()
        outputs["peer log"] = other.log_path.read_text()
        outputs["third log"] = third.log_path.read_text()
        assert "nats connected" in outputs["agent log"]
        assert "nats connected" in outputs["third log"]
        assert "Authorization Violation" in outputs["peer log"]
        assert "store-002" in outputs["peer /api/v1/sync/status"]
        assert "nats://store-003:***@127.0.0.1" in outputs["third /api/v1/sync/status"]
        for where, text in outputs.items():
            for secret in (nats_password, jwt_secret, wrong_password):
                assert secret not in text, f"a secret leaked into {where}"
    finally:
        server.cleanup()


async def test_a_config_file_secret_is_used_instead_of_a_generated_one(
    make_inproc: Any, tmp_path: Path
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("auth:\n  jwt_secret: configured-secret-0123456789abcdef0123456789\n")
    api_agent = await make_inproc("store-001", config_file=cfg)
    assert not (api_agent.data_dir / "jwt.secret").exists()
    good = jwt.encode(
        {"sub": "s", "role": "viewer", "exp": int(time.time()) + 60},
        "configured-secret-0123456789abcdef0123456789",
        algorithm="HS256",
    )
    http = api_agent.tcp()
    assert (await http.get("/api/v1/products", headers=bearer(good))).status_code == 200
    # a token made with another secret is refused
    r = await http.get(
        "/api/v1/products",
        headers=bearer(jwt.encode({"sub": "s", "exp": 2**31}, "z" * 40, algorithm="HS256")),
    )
    assert r.status_code == 401


async def test_rotating_the_generated_secret_invalidates_every_token(
    anyio_backend: str, tmp_path: Path
) -> None:
    """docs/OPERATIONS.md: stop the agent, remove jwt.secret, start it."""
    cfg = inproc.config(tmp_path)
    async with inproc.running(cfg) as api_agent:
        old = bearer(token_command(api_agent.data_dir, "ada", "admin"))
        assert (await api_agent.tcp().get("/api/v1/products", headers=old)).status_code == 200
        old_secret = secret_of(api_agent)
    (cfg.data_dir / "jwt.secret").unlink()
    async with inproc.running(cfg) as api_agent:  # started again on the same data dir
        assert secret_of(api_agent) != old_secret
        assert stat.S_IMODE(os.stat(cfg.data_dir / "jwt.secret").st_mode) == 0o600
        new = bearer(token_command(api_agent.data_dir, "ada", "admin"))
        http = api_agent.tcp()
        r = await http.get("/api/v1/products", headers=old)
        assert r.status_code == 401
        assert "invalid token" in r.json()["error"]
        assert (await http.get("/api/v1/products", headers=new)).status_code == 200
