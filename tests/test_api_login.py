"""Logging in (``POST /api/v1/auth/token``, ``GET /api/v1/auth/whoami``): the
rules in process (``tests.inproc``, argon2 with cheap parameters), and one
contract with a real agent over TCP and the real ``inv-agent user add``.

Good and bad passwords, an unknown user (the same answer after the same
work), a disabled account, lockout (429 with Retry-After), expiry, the end of
every login at ``passwd`` / ``disable``, ``inv-agent token`` tokens that keep
working, and a token over the socket."""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

from agent import auth
from agent.accounts import Passwords, UserStore
from agent.config import AuthConfig
from tests.helpers import Agent, bin_path, free_port, run_cli, short_tmpdir
from tests.inproc import InProcAgent, bearer, captured_logs, config, running

pytestmark = pytest.mark.anyio

CHEAP = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}
PASSWORD = "correct horse"
WRONG = {"error": "wrong username or password"}


class CountingHasher(PasswordHasher):
    """argon2 with cheap parameters that counts its checks (the work a login does)."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**(CHEAP | params))
        self.checked: list[str] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.checked.append(str(hash))
        return super().verify(hash, password)


@pytest.fixture
def hasher() -> CountingHasher:
    return CountingHasher()


@pytest.fixture
async def accounts_agent(tmp_path: Path, hasher: CountingHasher) -> AsyncIterator[InProcAgent]:
    """An agent with alice (a clerk of store-001) and bob (an admin); three
    failures for a user and five for an address are refused, no delays."""
    limits = AuthConfig(
        login_slow_after=100, login_max_failures=3, login_max_failures_per_address=5
    )
    cfg = config(tmp_path, auth=limits)
    users = UserStore(cfg.users_path)
    users.add("alice", "clerk", ["store-001"], hasher.hash(PASSWORD))
    users.add("bob", "admin", None, hasher.hash(PASSWORD))
    users.close()
    async with running(cfg, passwords=Passwords(hasher)) as agent:
        yield agent


async def login(
    client: httpx.AsyncClient, user: str = "alice", password: str = PASSWORD
) -> httpx.Response:
    return await client.post("/api/v1/auth/token", json={"username": user, "password": password})


def users_of(agent: InProcAgent) -> UserStore:
    """Another connection to the agent's users.db, as ``inv-agent user`` has."""
    return UserStore(agent.config.users_path)


async def test_a_good_login_is_a_token_for_the_account(accounts_agent: InProcAgent) -> None:
    http = accounts_agent.tcp()
    r = await login(http)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"token", "expiresAt", "user", "role", "stores"}
    assert (body["user"], body["role"], body["stores"]) == ("alice", "clerk", ["store-001"])
    claims = auth.decode(accounts_agent.secret, f"Bearer {body['token']}")
    assert claims["exp"] - claims["iat"] == 12 * 3600  # auth.login_ttl: a shift
    assert body["expiresAt"] == auth_iso(claims["exp"])
    me = await http.get("/api/v1/auth/whoami", headers=bearer(body["token"]))
    assert me.json() == {
        "user": "alice",
        "role": "clerk",
        "stores": ["store-001"],
        "via": "token",
        "expiresAt": body["expiresAt"],
    }
    # a clerk: may change her store's stock, not the catalogue nor another store's stock
    as_alice = accounts_agent.tcp(body["token"])
    add = {"operation": "add", "quantity": 1, "reason": "delivery"}
    r = await as_alice.post("/api/v1/products/PROD-001/stock", json=add)
    assert r.status_code == 202, r.text
    r = await as_alice.post("/api/v1/products/PROD-001/stock", json=add | {"storeId": "store-002"})
    assert r.status_code == 403
    r = await as_alice.post("/api/v1/products", json={"sku": "NEW-1", "name": "New"})
    assert r.status_code == 403


def auth_iso(seconds: int) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


async def test_wrong_password_and_unknown_user_get_the_same_answer_after_the_same_work(
    accounts_agent: InProcAgent, hasher: CountingHasher
) -> None:
    http = accounts_agent.tcp()
    with captured_logs() as logs:
        wrong = await login(http, "alice", "not the password")
        unknown = await login(http, "nobody", "not the password")
        odd = await login(http, "not a name!", "not the password")
    assert wrong.status_code == unknown.status_code == odd.status_code == 401
    assert wrong.json() == unknown.json() == odd.json() == WRONG
    # one argon2 check each, all with the same parameters (the unknown ones against a dummy)
    assert len(hasher.checked) == 3
    assert len({h.rsplit("$", 2)[0] for h in hasher.checked}) == 1
    failed = [e for e in logs if e["event"] == "login failed"]
    assert [(e["user"], e["reason"]) for e in failed] == [
        ("alice", "wrong password"),
        ("nobody", "unknown user"),
        ("not a name!", "unknown user"),
    ]
    assert all(e["address"] == "127.0.0.1" for e in failed)
    assert "not the password" not in json.dumps([dict(e) for e in logs], default=str)


async def test_a_disabled_account_cannot_log_in_and_its_logins_end(
    accounts_agent: InProcAgent,
) -> None:
    http = accounts_agent.tcp()
    token = (await login(http)).json()["token"]
    users = users_of(accounts_agent)
    users.set_enabled("alice", False)
    with captured_logs() as logs:
        r = await login(http)
    assert (r.status_code, r.json()) == (401, WRONG)
    assert [e["reason"] for e in logs if e["event"] == "login failed"] == ["account disabled"]
    r = await http.get("/api/v1/auth/whoami", headers=bearer(token))
    assert r.status_code == 401 and "log in again" in r.json()["error"]
    users.set_enabled("alice", True)  # enabled again: a new login, not the old token
    users.close()
    r = await http.get("/api/v1/auth/whoami", headers=bearer(token))
    assert r.status_code == 401
    assert (await login(http)).status_code == 200


async def test_a_new_password_ends_every_login_at_once(accounts_agent: InProcAgent) -> None:
    http = accounts_agent.tcp()
    token = (await login(http)).json()["token"]
    assert (await http.get("/api/v1/auth/whoami", headers=bearer(token))).status_code == 200
    users = users_of(accounts_agent)
    users.set_password("alice", Passwords(PasswordHasher(**CHEAP)).hash("a new password"))
    users.close()
    r = await http.get("/api/v1/auth/whoami", headers=bearer(token))
    assert r.status_code == 401, r.text
    assert (await login(http)).status_code == 401
    assert (await login(http, password="a new password")).status_code == 200


async def test_repeated_failures_are_refused_with_retry_after(
    accounts_agent: InProcAgent,
) -> None:
    http = accounts_agent.tcp()
    for _ in range(3):
        assert (await login(http, password="guess-guess")).status_code == 401
    with captured_logs() as logs:
        r = await login(http)  # even the right password, while locked out
    assert r.status_code == 429
    assert 1 <= int(r.headers["retry-after"]) <= 15 * 60
    assert "too many failed logins" in r.json()["error"]
    [refused] = [e for e in logs if e["event"] == "login refused"]
    assert (refused["user"], refused["failures"], refused["by"]) == ("alice", 3, "user")
    # another user from the same address is not locked out by alice's count...
    assert (await login(http, "bob")).status_code == 200
    # ...until the address has failed five times
    for _ in range(2):
        assert (await login(http, "bob", "guess-guess")).status_code == 401
    r = await login(http, "bob")
    assert r.status_code == 429 and "address" in r.json()["error"]
    # the socket is another address ("local")
    assert (await login(accounts_agent.local, "bob")).status_code == 200


async def test_a_success_clears_the_users_failures(accounts_agent: InProcAgent) -> None:
    http = accounts_agent.tcp()
    for _ in range(2):
        assert (await login(http, password="guess-guess")).status_code == 401
    assert (await login(http)).status_code == 200
    for _ in range(2):
        assert (await login(http, password="guess-guess")).status_code == 401
    assert (await login(http)).status_code == 200  # 2 + 2 failures, never 3 in a row


async def test_an_expired_login_is_refused_and_says_so(accounts_agent: InProcAgent) -> None:
    old = auth.issue(
        accounts_agent.secret, "alice", "clerk", 60, ["store-001"], generation=1, now=10**9
    )
    r = await accounts_agent.tcp(old).get("/api/v1/auth/whoami")
    assert r.status_code == 401
    assert r.json()["error"] == "login expired; log in again (inv login)"


async def test_the_accounts_role_wins_over_the_tokens_claims(accounts_agent: InProcAgent) -> None:
    forged_role = auth.issue(accounts_agent.secret, "alice", "admin", 600, generation=1)
    me = (await accounts_agent.tcp(forged_role).get("/api/v1/auth/whoami")).json()
    assert (me["role"], me["stores"]) == ("clerk", ["store-001"])


async def test_tokens_of_inv_agent_token_keep_working(accounts_agent: InProcAgent) -> None:
    token = accounts_agent.token("script", "viewer")  # no account of that name: none needed
    me = (await accounts_agent.tcp(token).get("/api/v1/auth/whoami")).json()
    assert (me["user"], me["role"], me["via"]) == ("script", "viewer", "token")


async def test_over_the_socket_a_token_is_its_user_and_a_bad_one_is_refused(
    accounts_agent: InProcAgent,
) -> None:
    token = (await login(accounts_agent.local)).json()["token"]  # login needs no token there
    me = await accounts_agent.local.get("/api/v1/auth/whoami", headers=bearer(token))
    assert (me.json()["user"], me.json()["via"]) == ("alice", "token")
    r = await accounts_agent.local.post(
        "/api/v1/products", json={"sku": "NEW-2", "name": "x"}, headers=bearer(token)
    )
    assert r.status_code == 403  # a clerk, even at the till
    r = await accounts_agent.local.get("/api/v1/auth/whoami", headers=bearer("garbage"))
    assert r.status_code == 401
    me = (await accounts_agent.local.get("/api/v1/auth/whoami")).json()
    assert (me["role"], me["via"], me["expiresAt"]) == ("admin", "socket", None)


@pytest.mark.parametrize(
    "body", [{"username": "alice"}, {"password": PASSWORD}, {"username": 1, "password": "x"}]
)
async def test_a_login_without_both_strings_is_422(
    accounts_agent: InProcAgent, body: dict[str, Any]
) -> None:
    r = await accounts_agent.tcp().post("/api/v1/auth/token", json=body)
    assert r.status_code == 422, r.text


async def test_a_hash_of_old_parameters_is_rehashed_at_login(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    old = PasswordHasher(**CHEAP)
    users = UserStore(cfg.users_path)
    users.add("carol", "viewer", None, old.hash(PASSWORD))
    now = Passwords(PasswordHasher(time_cost=2, memory_cost=16, parallelism=1))
    async with running(cfg, passwords=now) as agent:
        r = await login(agent.tcp(), "carol")
        assert r.status_code == 200, r.text
        found = users.credentials("carol")
        assert found is not None
        user, stored = found
        assert not now.needs_rehash(stored) and stored.startswith("$argon2id$v=19$m=16,t=2")
        assert user.generation == 1  # not a new password: the login stays valid
        me = await agent.tcp(r.json()["token"]).get("/api/v1/auth/whoami")
        assert me.status_code == 200
    users.close()


def test_contract_a_real_agent_logs_in_a_user_added_while_it_runs() -> None:
    """The console scripts and TCP: ``inv-agent user add --password-stdin`` on
    a running agent's data dir, the login over TCP with the library's own
    argon2 parameters, and ``inv login`` / ``inv whoami`` storing and using it."""
    home = short_tmpdir()
    agent = Agent("store-001", home, port=free_port()).start()
    try:
        add = subprocess.run(
            [
                *(bin_path("inv-agent"), "user", "add", "dana", "--role", "clerk"),
                *("--store", "store-001", "--data-dir", str(agent.data_dir), "--password-stdin"),
            ],
            input=PASSWORD + "\n",
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert add.returncode == 0, add.stderr
        assert "$argon2" not in add.stdout + add.stderr
        r = httpx.post(
            f"{agent.url}/api/v1/auth/token", json={"username": "dana", "password": PASSWORD}
        )
        assert r.status_code == 200, r.text
        env = {"INV_AGENT": agent.url, "XDG_CONFIG_HOME": str(home / "config")}
        done = run_cli(
            agent, "login", "--user", "dana", "--password-stdin", input=PASSWORD, env=env
        )
        assert done.returncode == 0, done.stderr
        assert "logged in" in done.stderr
        done = run_cli(agent, "whoami", "--json", env=env)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["user"] == "dana"
        assert "dana" in agent.log() and PASSWORD not in agent.log()
    finally:
        agent.stop()
