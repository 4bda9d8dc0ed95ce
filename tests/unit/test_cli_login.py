"""``inv login``, ``inv logout``, ``inv whoami`` in process against a fake
agent: the stored login (0600, per target) and its use by later commands."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from inventory_cli import credentials
from tests.cli_support import FakeAgent, availability_obj, error_of, run, stock_obj

TARGET = "/nonexistent/fake-agent.sock"  # what cli_support.run points INV_AGENT at
LOGIN = "/api/v1/auth/token"
STOCK = "/api/v1/products/PROD-001/availability"


def answer(expires: float | None = None, **fields: Any) -> dict[str, Any]:
    at = time.gmtime(expires if expires is not None else time.time() + 3600)
    return {
        "token": "tok-alice",
        "expiresAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", at),
        "user": "alice",
        "role": "clerk",
        "stores": ["store-001"],
        **fields,
    }


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str | None]:
    """The environment of a user whose config dir is under tmp_path."""
    return {"XDG_CONFIG_HOME": str(tmp_path / "config")}


def stored(tmp_path: Path) -> dict[str, Any]:
    return json.loads((tmp_path / "config" / "inv" / "credentials.json").read_text())  # type: ignore[no-any-return]


def availability() -> dict[str, Any]:
    return availability_obj(stock_obj())


def test_login_stores_the_token_and_later_commands_send_it(
    tmp_path: Path, home: dict[str, str | None]
) -> None:
    fake = FakeAgent().on("POST", LOGIN, answer()).on("GET", STOCK, availability())
    r = run(fake, "login", "--user", "alice", "--password-stdin", env=home, input="pw pw pw\n")
    assert fake.last.body == {"username": "alice", "password": "pw pw pw"}
    assert "authorization" not in {k.lower() for k in fake.last.headers}
    assert "logged in to /nonexistent/fake-agent.sock as alice (clerk, stores: store-001)" in (
        r.stderr
    )
    assert r.stdout == "" and "pw pw pw" not in r.stderr
    file = tmp_path / "config" / "inv" / "credentials.json"
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert stat.S_IMODE(file.parent.stat().st_mode) == 0o700
    assert stored(tmp_path)["targets"][TARGET]["token"] == "tok-alice"
    run(fake, "stock", "show", "PROD-001", env=home)
    assert fake.last.headers["Authorization"] == "Bearer tok-alice"
    run(fake, "--token", "given", "stock", "show", "PROD-001", env=home)  # a given token wins
    assert fake.last.headers["Authorization"] == "Bearer given"
    run(fake, "stock", "show", "PROD-001", env={**home, "INV_TOKEN": "from-env"})
    assert fake.last.headers["Authorization"] == "Bearer from-env"
    # another agent target: not this login
    run(fake, "--agent", "/elsewhere.sock", "stock", "show", "PROD-001", env=home)
    assert "Authorization" not in fake.last.headers


def test_login_prompts_for_the_user_and_the_password(
    tmp_path: Path, home: dict[str, str | None]
) -> None:
    fake = FakeAgent().on("POST", LOGIN, answer())
    r = run(fake, "login", env=home, input="alice\nsecret words\n")
    assert fake.last.body == {"username": "alice", "password": "secret words"}
    assert "secret words" not in r.stdout + r.stderr
    assert "User:" in r.stderr and "Password:" in r.stderr  # prompts go to stderr


def test_a_refused_login_is_the_agents_message_and_stores_nothing(
    tmp_path: Path, home: dict[str, str | None]
) -> None:
    fake = FakeAgent().on("POST", LOGIN, {"error": "wrong username or password"}, status=401)
    r = run(fake, "login", "-u", "alice", "--password-stdin", env=home, input="nope\n", code=1)
    assert error_of(r) == "Error: wrong username or password"
    assert not (tmp_path / "config" / "inv" / "credentials.json").exists()
    fake = FakeAgent().on(
        "POST", LOGIN, {"error": "too many failed logins for this user; try again in 60 s"}, 429
    )
    r = run(fake, "login", "-u", "alice", "--password-stdin", env=home, input="x\n", code=1)
    assert "try again in 60 s" in error_of(r)
    r = run(fake, "login", "--password-stdin", env=home, input="x\n", code=2)
    assert "--password-stdin needs --user" in error_of(r)


def test_an_expired_login_says_what_to_do_and_logout_forgets_it(
    tmp_path: Path, home: dict[str, str | None]
) -> None:
    fake = FakeAgent().on("POST", LOGIN, answer(expires=time.time() - 60))
    fake.on("GET", STOCK, availability())
    run(fake, "login", "-u", "alice", "--password-stdin", env=home, input="pw\n")
    r = run(fake, "stock", "show", "PROD-001", env=home, code=1)
    assert error_of(r).startswith("Error: your login as alice expired at ")
    assert error_of(r).endswith(": run inv login, or inv logout")
    r = run(fake, "logout", env=home)
    assert r.stderr.strip() == f"logged out of {TARGET} (alice)"
    assert stored(tmp_path) == {"targets": {}}
    run(fake, "stock", "show", "PROD-001", env=home)
    assert "Authorization" not in fake.last.headers
    r = run(fake, "logout", env=home)
    assert r.stderr.strip() == f"not logged in to {TARGET}"


def test_logins_to_two_agents_are_kept_apart(tmp_path: Path) -> None:
    file = tmp_path / "credentials.json"
    a = credentials.StoredLogin.from_json(answer())
    b = credentials.StoredLogin.from_json(answer(user="bob", token="tok-bob"))
    credentials.save("http://till:8080/", a, file)
    credentials.save("/run/agent.sock", b, file)
    assert credentials.find("http://till:8080", file) == a  # the same agent, without the "/"
    assert credentials.find("/run/./agent.sock", file) == b
    assert credentials.forget("http://till:8080", file) == a
    assert credentials.find("/run/agent.sock", file) == b
    file.write_text("{not json")  # a damaged file: as if not logged in
    assert credentials.find("/run/agent.sock", file) is None


@pytest.mark.parametrize("xdg", [None, "", "  ", "/somewhere/else"])
def test_the_config_dir_is_platformdirs_own(
    xdg: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import platformdirs

    if xdg is None:
        monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_CONFIG_HOME", xdg)
    assert credentials.config_dir() == Path(platformdirs.user_config_dir("inv"))


def test_whoami(tmp_path: Path, home: dict[str, str | None]) -> None:
    me = {"user": "alice", "role": "clerk", "stores": ["store-001"], "via": "token"}
    me["expiresAt"] = answer()["expiresAt"]
    fake = FakeAgent().on("GET", "/api/v1/auth/whoami", me)
    r = run(fake, "whoami", env=home)
    assert r.stdout.startswith("alice (clerk, stores: store-001), logged in, until ")
    r = run(fake, "whoami", "--json", env=home)
    assert json.loads(r.stdout) == me
    local = {"user": "local", "role": "admin", "stores": None, "via": "socket", "expiresAt": None}
    fake = FakeAgent().on("GET", "/api/v1/auth/whoami", local)
    assert run(fake, "whoami", env=home).stdout.strip() == "local (admin), over the local socket"
