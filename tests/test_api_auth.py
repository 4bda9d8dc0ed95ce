"""Access control: over TCP every /api/v1 call needs a valid bearer JWT with a
role that allows it (and a store list that includes the store it changes);
the Unix socket is local admin, guarded by its 0600 file mode.

The rules run in-process (``tests.inproc``: TCP is a request with a port, the
socket one without); the real ``inv-agent token`` command makes the tokens
where its output is what is tested, and a real agent process shows the socket
file's mode and that uvicorn's socket requests are local admin."""

from __future__ import annotations

import os
import stat
import time
from typing import Any

import httpx
import jwt
import pytest

from agent import auth
from tests.helpers import Agent, token_command
from tests.inproc import InProcAgent, wait_until

SEED_ID = "550e8400-e29b-41d4-a716-446655440000"


def secret_of(api_agent: InProcAgent) -> str:
    return (api_agent.data_dir / "jwt.secret").read_text().strip()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def local_stock(
    api_agent: InProcAgent, sku: str = "PROD-001", store: str = "store-001"
) -> dict[str, Any]:
    r = await api_agent.local.get(f"/api/v1/products/{sku}/availability", params={"storeId": store})
    assert r.status_code == 200, r.text
    return r.json()["stores"][0]  # type: ignore[no-any-return]


pytestmark = pytest.mark.anyio


@pytest.fixture
def http(api_agent: InProcAgent) -> httpx.AsyncClient:
    """Over TCP, with no token unless a request brings one."""
    return api_agent.tcp()


WRITES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/api/v1/products/PROD-001/stock", {"operation": "add", "quantity": 1}),
    ("POST", "/api/v1/reservations", {"productId": SEED_ID, "quantity": 1}),
    ("POST", "/api/v1/products", {"sku": "NEW-1", "name": "New"}),
    ("PATCH", "/api/v1/products/PROD-001", {"price": 1.0}),
    ("POST", "/api/v1/imports/stock", {"rows": [{"line": 2, "sku": "PROD-001", "quantity": 1}]}),
    ("POST", "/api/v1/imports/products", {"rows": [{"line": 2, "sku": "NEW-2", "name": "x"}]}),
]
READS = [
    "/api/v1/products",
    "/api/v1/products/PROD-001",
    "/api/v1/products/PROD-001/availability",
    "/api/v1/products/PROD-001/history",
    "/api/v1/reservations",
    "/api/v1/sync/status",
    "/api/v1/conflicts",
    "/api/v1/agent",
]


async def assert_unchanged(api_agent: InProcAgent) -> None:
    row = await local_stock(api_agent)
    assert (row["quantity"], row["reserved"]) == (10, 0)
    api = api_agent.local
    assert (await api.get("/api/v1/products/PROD-001")).json()["price"] == 599.99
    assert (await api.get("/api/v1/products")).json()["pagination"]["total"] == 3
    assert (await api.get("/api/v1/reservations")).json()["data"] == []


# ------------------------------------------------------------------- tokens
async def test_tcp_api_without_a_valid_token_is_401(
    api_agent: InProcAgent, http: httpx.AsyncClient
) -> None:
    other_secret = auth.issue("not-the-agent-secret" * 3, "mallory", "admin", 3600)
    no_exp = jwt.encode({"sub": "x", "role": "admin"}, secret_of(api_agent), algorithm="HS256")
    bad_role = jwt.encode(
        {"sub": "x", "role": "root", "exp": int(time.time()) + 60},
        secret_of(api_agent),
        algorithm="HS256",
    )
    none_alg = jwt.encode({"sub": "x", "role": "admin", "exp": int(time.time()) + 60}, None, "none")
    headers_list: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dGVzdDp0ZXN0"},
        {"Authorization": f"Token {api_agent.token()}"},
        bearer("test-token"),
        bearer(other_secret),
        bearer(no_exp),
        bearer(bad_role),
        bearer(none_alg),
    ]
    for headers in headers_list:
        for path in READS:
            r = await http.get(path, headers=headers)
            assert r.status_code == 401, (headers, path, r.text)
            assert set(r.json()) == {"error"}
        for method, path, body in WRITES:
            r = await http.request(method, path, json=body, headers=headers)
            assert r.status_code == 401, (headers, method, path, r.text)
    r = await http.get("/api/v1/products")
    assert "missing bearer token" in r.json()["error"]
    r = await http.get("/api/v1/products", headers=bearer(other_secret))
    assert r.json()["error"].startswith("invalid token")
    await assert_unchanged(api_agent)


async def test_expired_tokens_are_401(api_agent: InProcAgent, http: httpx.AsyncClient) -> None:
    secret = secret_of(api_agent)
    expired = auth.issue(secret, "old", "admin", expires_in=-5)
    r = await http.get("/api/v1/products", headers=bearer(expired))
    assert r.status_code == 401, r.text
    assert "expired" in r.json()["error"]
    r = await http.post(
        "/api/v1/products/PROD-001/stock",
        json={"operation": "set", "quantity": 0},
        headers=bearer(expired),
    )
    assert r.status_code == 401, r.text

    # a short-lived token works until it expires, then is refused
    brief = auth.issue(secret, "brief", "admin", expires_in=2)
    assert (await http.get("/api/v1/products", headers=bearer(brief))).status_code == 200

    async def refused() -> bool:
        return (await http.get("/api/v1/products", headers=bearer(brief))).status_code == 401

    await wait_until(refused, timeout=5, what="the 2 s token to expire")
    assert "expired" in (await http.get("/api/v1/products", headers=bearer(brief))).json()["error"]
    await assert_unchanged(api_agent)


async def test_token_command_makes_tokens_with_the_asked_lifetime_and_stores(
    api_agent: InProcAgent, http: httpx.AsyncClient
) -> None:
    """The real ``inv-agent token``, on the data dir of the agent that checks them."""
    data = api_agent.data_dir
    token = token_command(data, "ana", "clerk", "--expires", "1s", "--store", "store-002")
    claims = jwt.decode(
        token, secret_of(api_agent), algorithms=["HS256"], options={"verify_exp": False}
    )
    assert claims["exp"] - claims["iat"] == 1
    assert (claims["sub"], claims["role"], claims["stores"]) == ("ana", "clerk", ["store-002"])
    viewer = token_command(data, "bo", "viewer")
    default = jwt.decode(viewer, secret_of(api_agent), algorithms=["HS256"])
    assert default["exp"] - default["iat"] == 24 * 3600
    assert "stores" not in default
    assert (await http.get("/api/v1/products", headers=bearer(viewer))).status_code == 200


# -------------------------------------------------------------------- roles
async def test_viewer_reads_but_cannot_write(
    api_agent: InProcAgent, http: httpx.AsyncClient
) -> None:
    pending = await api_agent.local.post(
        "/api/v1/reservations", json={"reservationId": "r-1", "productId": SEED_ID, "quantity": 1}
    )
    assert pending.status_code == 202
    viewer = bearer(api_agent.token("vic", "viewer"))
    for path in READS:
        r = await http.get(path, headers=viewer)
        assert r.status_code == 200, (path, r.text)
    assert (await http.get("/api/v1/reservations/r-1", headers=viewer)).status_code == 200
    for method, path, body in WRITES:
        r = await http.request(method, path, json=body, headers=viewer)
        assert r.status_code == 403, (method, path, r.text)
        assert "viewer" in r.json()["error"]
    assert (await http.post("/api/v1/reservations/r-1/confirm", headers=viewer)).status_code == 403
    assert (await http.delete("/api/v1/reservations/r-1", headers=viewer)).status_code == 403
    row = await local_stock(api_agent)
    assert (row["quantity"], row["reserved"]) == (10, 1)
    assert (await api_agent.local.get("/api/v1/reservations/r-1")).json()["status"] == "PENDING"


async def test_clerk_changes_stock_and_reservations_but_not_the_catalogue(
    api_agent: InProcAgent, http: httpx.AsyncClient
) -> None:
    clerk = bearer(api_agent.token("cleo", "clerk"))
    r = await http.post(
        "/api/v1/products/PROD-001/stock",
        json={"storeId": "store-001", "operation": "add", "quantity": 2},
        headers=clerk,
    )
    assert r.status_code == 202, r.text
    r = await http.post(
        "/api/v1/reservations", json={"productId": "PROD-001", "quantity": 3}, headers=clerk
    )
    assert r.status_code == 202, r.text
    rid = r.json()["reservationId"]
    r = await http.post(f"/api/v1/reservations/{rid}/confirm", headers=clerk)
    assert r.status_code == 200, r.text
    sell = (await api_agent.local.get("/api/v1/products/PROD-001/history")).json()["data"][0]
    assert (sell["kind"], sell["actor"]) == ("sell", "cleo")
    for method, path, body in WRITES[2:]:
        r = await http.request(method, path, json=body, headers=clerk)
        assert r.status_code == 403, (method, path, r.text)
        assert "admin" in r.json()["error"]
    assert (await local_stock(api_agent))["quantity"] == 9
    assert (await api_agent.local.get("/api/v1/products")).json()["pagination"]["total"] == 3


async def test_clerk_limited_to_a_store_cannot_change_another(
    api_agent: InProcAgent, http: httpx.AsyncClient
) -> None:
    api = api_agent.local
    r = await api.post(
        "/api/v1/reservations",
        json={"reservationId": "s1-res", "productId": SEED_ID, "quantity": 1},
    )
    assert r.status_code == 202
    r = await api.post(
        "/api/v1/reservations",
        json={"reservationId": "s1-res-2", "productId": SEED_ID, "quantity": 1},
    )
    assert r.status_code == 202
    clerk2 = bearer(api_agent.token("dora", "clerk", ["store-002"]))

    for body in (
        {"storeId": "store-001", "operation": "add", "quantity": 1},
        {"operation": "set", "quantity": 0},  # no storeId: this agent's store, store-001
    ):
        r = await http.post("/api/v1/products/PROD-001/stock", json=body, headers=clerk2)
        assert r.status_code == 403, r.text
        assert "store-001" in r.json()["error"]
    for body in (
        {"productId": SEED_ID, "storeId": "store-001", "quantity": 1},
        {"productId": SEED_ID, "quantity": 1},
    ):
        r = await http.post("/api/v1/reservations", json=body, headers=clerk2)
        assert r.status_code == 403, r.text
    r = await http.post("/api/v1/reservations/s1-res/confirm", headers=clerk2)
    assert r.status_code == 403, r.text
    r = await http.delete("/api/v1/reservations/s1-res-2", headers=clerk2)
    assert r.status_code == 403, r.text

    row = await local_stock(api_agent)
    assert (row["quantity"], row["reserved"]) == (10, 2)
    assert (await api.get("/api/v1/reservations/s1-res")).json()["status"] == "PENDING"
    assert (await api.get("/api/v1/reservations/s1-res-2")).json()["status"] == "PENDING"

    # its own store is fine, and reading is not limited
    r = await http.post(
        "/api/v1/products/PROD-001/stock",
        json={"storeId": "store-002", "operation": "add", "quantity": 1},
        headers=clerk2,
    )
    assert r.status_code == 202, r.text
    assert (await local_stock(api_agent, store="store-002"))["quantity"] == 6
    assert (
        await http.get("/api/v1/products/PROD-001/availability", headers=clerk2)
    ).status_code == 200
    both = bearer(api_agent.token("eve", "clerk", ["store-001", "store-002"]))
    r = await http.post("/api/v1/reservations/s1-res/confirm", headers=both)
    assert r.status_code == 200, r.text


# ------------------------------------------------------ open endpoints, socket
async def test_health_and_metrics_need_no_token(
    api_agent: InProcAgent, http: httpx.AsyncClient
) -> None:
    r = await http.get("/health")
    assert r.status_code == 200
    assert r.json()["status"] == "healthy"
    r = await http.get("/metrics")
    assert r.status_code == 200
    assert "inv_http_requests_total" in r.text


def test_the_socket_is_local_admin_and_owner_only(agent: Agent) -> None:
    """A real agent process: the socket file's mode, and that uvicorn's socket
    requests are local admin while its TCP requests are not (what the
    in-process tests take the ASGI scope's port to mean)."""
    mode = os.stat(agent.socket).st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600
    assert stat.S_IMODE(os.stat(agent.data_dir / "jwt.secret").st_mode) == 0o600

    assert stat.S_IMODE(os.stat(agent.data_dir / "users.db").st_mode) == 0o600

    api = agent.client()
    assert api.get("/api/v1/products").status_code == 200
    # no token needed; but one that is sent is that token's user, and a bad one a 401
    # (a clerk logged in at the till is herself, never silently local admin)
    new = {"sku": "SOCK-1", "name": "via socket"}
    r = api.post("/api/v1/products", json=new, headers=bearer("garbage"))
    assert r.status_code == 401, r.text
    r = api.post("/api/v1/products", json=new)
    assert r.status_code == 201, r.text
    r = api.post("/api/v1/imports/products", json={"rows": [{"line": 2, "sku": "SOCK-2"}]})
    assert r.status_code == 200, r.text
    # ... but over TCP the same calls need a token
    with httpx.Client(base_url=agent.url, timeout=30) as tcp:
        r = tcp.post("/api/v1/products", json={"sku": "SOCK-3", "name": "via tcp"})
        assert r.status_code == 401, r.text
        assert tcp.get("/api/v1/products").status_code == 401
    assert api.get("/api/v1/products/SOCK-3").status_code == 404


# ------------------------------------------------------------------- limits
async def test_rate_and_body_limits(make_inproc: Any) -> None:
    api_agent = await make_inproc(
        "store-001",
        env={
            "INV_LIMITS_RATE_PER_MINUTE": "5",
            "INV_LIMITS_RATE_BURST": "0",
            "INV_LIMITS_MAX_BODY_BYTES": "2000",
        },
    )
    token = bearer(api_agent.token("rita", "admin"))
    http = api_agent.tcp()
    statuses = [(await http.get("/api/v1/products", headers=token)).status_code for _ in range(7)]
    assert statuses == [200] * 5 + [429] * 2
    r = await http.get("/api/v1/products", headers=token)
    assert r.status_code == 429
    assert "rate limit" in r.json()["error"]
    assert int(r.headers["retry-after"]) >= 1
    # per token: another caller is not held up; /health and the socket are exempt
    other = bearer(api_agent.token("otto", "viewer"))
    assert (await http.get("/api/v1/products", headers=other)).status_code == 200
    assert [(await http.get("/health")).status_code for _ in range(8)] == [200] * 8
    api = api_agent.local
    assert [(await api.get("/api/v1/products")).status_code for _ in range(8)] == [200] * 8

    rows = [{"line": i + 2, "sku": "PROD-001", "quantity": i} for i in range(100)]
    r = await api.post("/api/v1/imports/stock", json={"rows": rows})
    assert r.status_code == 413, r.text
    assert "2000" in r.json()["error"]
    assert (await local_stock(api_agent))["quantity"] == 10
    r = await api.post("/api/v1/imports/stock", json={"rows": rows[3:4]})
    assert r.status_code == 200, r.text
    assert (await local_stock(api_agent))["quantity"] == 3
