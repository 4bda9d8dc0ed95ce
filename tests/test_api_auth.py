"""Access control: over TCP every /api/v1 call needs a valid bearer JWT with a
role that allows it (and a store list that includes the store it changes);
the Unix socket is local admin, guarded by its 0600 file mode."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest

from agent import auth
from tests.helpers import Agent, wait_for

SEED_ID = "550e8400-e29b-41d4-a716-446655440000"


def secret_of(agent: Agent) -> str:
    return (agent.data_dir / "jwt.secret").read_text().strip()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def local_stock(agent: Agent, sku: str = "PROD-001", store: str = "store-001") -> dict[str, Any]:
    r = agent.client().get(f"/api/v1/products/{sku}/availability", params={"storeId": store})
    assert r.status_code == 200, r.text
    return r.json()["stores"][0]  # type: ignore[no-any-return]


@pytest.fixture
def http(agent: Agent) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=agent.url, timeout=30) as client:
        yield client


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


def assert_unchanged(agent: Agent) -> None:
    row = local_stock(agent)
    assert (row["quantity"], row["reserved"]) == (10, 0)
    api = agent.client()
    assert api.get("/api/v1/products/PROD-001").json()["price"] == 599.99
    assert api.get("/api/v1/products").json()["pagination"]["total"] == 3
    assert api.get("/api/v1/reservations").json()["data"] == []


# ------------------------------------------------------------------- tokens
def test_tcp_api_without_a_valid_token_is_401(agent: Agent, http: httpx.Client) -> None:
    other_secret = auth.issue("not-the-agent-secret" * 3, "mallory", "admin", 3600)
    no_exp = jwt.encode({"sub": "x", "role": "admin"}, secret_of(agent), algorithm="HS256")
    bad_role = jwt.encode(
        {"sub": "x", "role": "root", "exp": int(time.time()) + 60},
        secret_of(agent),
        algorithm="HS256",
    )
    none_alg = jwt.encode({"sub": "x", "role": "admin", "exp": int(time.time()) + 60}, None, "none")
    headers_list: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dGVzdDp0ZXN0"},
        {"Authorization": f"Token {agent.token()}"},
        bearer("test-token"),
        bearer(other_secret),
        bearer(no_exp),
        bearer(bad_role),
        bearer(none_alg),
    ]
    for headers in headers_list:
        for path in READS:
            r = http.get(path, headers=headers)
            assert r.status_code == 401, (headers, path, r.text)
            assert set(r.json()) == {"error"}
        for method, path, body in WRITES:
            r = http.request(method, path, json=body, headers=headers)
            assert r.status_code == 401, (headers, method, path, r.text)
    r = http.get("/api/v1/products")
    assert "missing bearer token" in r.json()["error"]
    r = http.get("/api/v1/products", headers=bearer(other_secret))
    assert r.json()["error"].startswith("invalid token")
    assert_unchanged(agent)


def test_expired_tokens_are_401(agent: Agent, http: httpx.Client) -> None:
    secret = secret_of(agent)
    expired = auth.issue(secret, "old", "admin", expires_in=-5)
    r = http.get("/api/v1/products", headers=bearer(expired))
    assert r.status_code == 401, r.text
    assert "expired" in r.json()["error"]
    r = http.post(
        "/api/v1/products/PROD-001/stock",
        json={"operation": "set", "quantity": 0},
        headers=bearer(expired),
    )
    assert r.status_code == 401, r.text

    # a short-lived token works until it expires, then is refused
    brief = auth.issue(secret, "brief", "admin", expires_in=2)
    assert http.get("/api/v1/products", headers=bearer(brief)).status_code == 200
    wait_for(
        lambda: http.get("/api/v1/products", headers=bearer(brief)).status_code == 401,
        timeout=5,
        what="the 2 s token to expire",
    )
    assert "expired" in http.get("/api/v1/products", headers=bearer(brief)).json()["error"]
    assert_unchanged(agent)


def test_token_command_makes_tokens_with_the_asked_lifetime_and_stores(agent: Agent) -> None:
    token = agent.token("ana", "clerk", "--expires", "1s", "--store", "store-002")
    claims = jwt.decode(
        token, secret_of(agent), algorithms=["HS256"], options={"verify_exp": False}
    )
    assert claims["exp"] - claims["iat"] == 1
    assert (claims["sub"], claims["role"], claims["stores"]) == ("ana", "clerk", ["store-002"])
    default = jwt.decode(agent.token("bo", "viewer"), secret_of(agent), algorithms=["HS256"])
    assert default["exp"] - default["iat"] == 24 * 3600
    assert "stores" not in default


# -------------------------------------------------------------------- roles
def test_viewer_reads_but_cannot_write(agent: Agent, http: httpx.Client) -> None:
    pending = agent.client().post(
        "/api/v1/reservations", json={"reservationId": "r-1", "productId": SEED_ID, "quantity": 1}
    )
    assert pending.status_code == 202
    viewer = bearer(agent.token("vic", "viewer"))
    for path in READS:
        r = http.get(path, headers=viewer)
        assert r.status_code == 200, (path, r.text)
    assert http.get("/api/v1/reservations/r-1", headers=viewer).status_code == 200
    for method, path, body in WRITES:
        r = http.request(method, path, json=body, headers=viewer)
        assert r.status_code == 403, (method, path, r.text)
        assert "viewer" in r.json()["error"]
    assert http.post("/api/v1/reservations/r-1/confirm", headers=viewer).status_code == 403
    assert http.delete("/api/v1/reservations/r-1", headers=viewer).status_code == 403
    row = local_stock(agent)
    assert (row["quantity"], row["reserved"]) == (10, 1)
    assert agent.client().get("/api/v1/reservations/r-1").json()["status"] == "PENDING"


def test_clerk_changes_stock_and_reservations_but_not_the_catalogue(
    agent: Agent, http: httpx.Client
) -> None:
    clerk = bearer(agent.token("cleo", "clerk"))
    r = http.post(
        "/api/v1/products/PROD-001/stock",
        json={"storeId": "store-001", "operation": "add", "quantity": 2},
        headers=clerk,
    )
    assert r.status_code == 202, r.text
    r = http.post(
        "/api/v1/reservations", json={"productId": "PROD-001", "quantity": 3}, headers=clerk
    )
    assert r.status_code == 202, r.text
    rid = r.json()["reservationId"]
    r = http.post(f"/api/v1/reservations/{rid}/confirm", headers=clerk)
    assert r.status_code == 200, r.text
    sell = agent.client().get("/api/v1/products/PROD-001/history").json()["data"][0]
    assert (sell["kind"], sell["actor"]) == ("sell", "cleo")
    for method, path, body in WRITES[2:]:
        r = http.request(method, path, json=body, headers=clerk)
        assert r.status_code == 403, (method, path, r.text)
        assert "admin" in r.json()["error"]
    assert local_stock(agent)["quantity"] == 9
    assert agent.client().get("/api/v1/products").json()["pagination"]["total"] == 3


def test_clerk_limited_to_a_store_cannot_change_another(agent: Agent, http: httpx.Client) -> None:
    api = agent.client()
    r = api.post(
        "/api/v1/reservations",
        json={"reservationId": "s1-res", "productId": SEED_ID, "quantity": 1},
    )
    assert r.status_code == 202
    r = api.post(
        "/api/v1/reservations",
        json={"reservationId": "s1-res-2", "productId": SEED_ID, "quantity": 1},
    )
    assert r.status_code == 202
    clerk2 = bearer(agent.token("dora", "clerk", "--store", "store-002"))

    for body in (
        {"storeId": "store-001", "operation": "add", "quantity": 1},
        {"operation": "set", "quantity": 0},  # no storeId: this agent's store, store-001
    ):
        r = http.post("/api/v1/products/PROD-001/stock", json=body, headers=clerk2)
        assert r.status_code == 403, r.text
        assert "store-001" in r.json()["error"]
    for body in (
        {"productId": SEED_ID, "storeId": "store-001", "quantity": 1},
        {"productId": SEED_ID, "quantity": 1},
    ):
        r = http.post("/api/v1/reservations", json=body, headers=clerk2)
        assert r.status_code == 403, r.text
    r = http.post("/api/v1/reservations/s1-res/confirm", headers=clerk2)
    assert r.status_code == 403, r.text
    r = http.delete("/api/v1/reservations/s1-res-2", headers=clerk2)
    assert r.status_code == 403, r.text

    row = local_stock(agent)
    assert (row["quantity"], row["reserved"]) == (10, 2)
    assert api.get("/api/v1/reservations/s1-res").json()["status"] == "PENDING"
    assert api.get("/api/v1/reservations/s1-res-2").json()["status"] == "PENDING"

    # its own store is fine, and reading is not limited
    r = http.post(
        "/api/v1/products/PROD-001/stock",
        json={"storeId": "store-002", "operation": "add", "quantity": 1},
        headers=clerk2,
    )
    assert r.status_code == 202, r.text
    assert local_stock(agent, store="store-002")["quantity"] == 6
    assert http.get("/api/v1/products/PROD-001/availability", headers=clerk2).status_code == 200
    both = bearer(agent.token("eve", "clerk", "--store", "store-001", "--store", "store-002"))
    r = http.post("/api/v1/reservations/s1-res/confirm", headers=both)
    assert r.status_code == 200, r.text


# ------------------------------------------------------ open endpoints, socket
def test_health_and_metrics_need_no_token(agent: Agent, http: httpx.Client) -> None:
    r = http.get("/health")
    assert r.status_code == 200
    assert r.json()["status"] == "healthy"
    r = http.get("/metrics")
    assert r.status_code == 200
    assert "inv_http_requests_total" in r.text


def test_the_socket_is_local_admin_and_owner_only(agent: Agent) -> None:
    mode = os.stat(agent.socket).st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600
    assert stat.S_IMODE(os.stat(agent.data_dir / "jwt.secret").st_mode) == 0o600

    api = agent.client()
    assert api.get("/api/v1/products").status_code == 200
    # no token needed, and a bad one is irrelevant there
    r = api.post(
        "/api/v1/products",
        json={"sku": "SOCK-1", "name": "via socket"},
        headers=bearer("garbage"),
    )
    assert r.status_code == 201, r.text
    r = api.post("/api/v1/imports/products", json={"rows": [{"line": 2, "sku": "SOCK-2"}]})
    assert r.status_code == 200, r.text


# ------------------------------------------------------------------- limits
def test_rate_and_body_limits(make_agent: Any) -> None:
    agent = make_agent(
        "store-001",
        tcp=True,
        env={
            "INV_LIMITS_RATE_PER_MINUTE": "5",
            "INV_LIMITS_RATE_BURST": "0",
            "INV_LIMITS_MAX_BODY_BYTES": "2000",
        },
    )
    token = bearer(agent.token("rita", "admin"))
    with httpx.Client(base_url=agent.url, timeout=30) as http:
        statuses = [http.get("/api/v1/products", headers=token).status_code for _ in range(7)]
        assert statuses == [200] * 5 + [429] * 2
        r = http.get("/api/v1/products", headers=token)
        assert r.status_code == 429
        assert "rate limit" in r.json()["error"]
        assert int(r.headers["retry-after"]) >= 1
        # per token: another caller is not held up; /health and the socket are exempt
        other = bearer(agent.token("otto", "viewer"))
        assert http.get("/api/v1/products", headers=other).status_code == 200
        assert [http.get("/health").status_code for _ in range(8)] == [200] * 8
    api = agent.client()
    assert [api.get("/api/v1/products").status_code for _ in range(8)] == [200] * 8

    rows = [{"line": i + 2, "sku": "PROD-001", "quantity": i} for i in range(100)]
    r = api.post("/api/v1/imports/stock", json={"rows": rows})
    assert r.status_code == 413, r.text
    assert "2000" in r.json()["error"]
    assert local_stock(agent)["quantity"] == 10
    r = api.post("/api/v1/imports/stock", json={"rows": rows[3:4]})
    assert r.status_code == 200, r.text
    assert local_stock(agent)["quantity"] == 3
