"""Shell completion, driven the way the shells' scripts drive ``inv``: click's
variables (``_INV_COMPLETE=complete_bash`` with ``COMP_WORDS`` and
``COMP_CWORD``; zsh and fish with ``_TYPER_COMPLETE_ARGS``), in process
with CliRunner against a fake agent. Commands and options complete by click;
SKUs, stores, reservation and transfer ids from the agent, within the
deadline; a failing agent completes nothing and says nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from inventory_cli import completion, render
from inventory_cli.context import Context
from inventory_cli.main import app
from inventory_cli.transport import ConnectFailed, Response, TimedOut
from tests.cli_support import FakeAgent, product_obj, reservation_obj

RES = "/api/v1/reservations"
STORES = {"data": [{"storeId": "store-001", "name": "Madrid Centro"},
                   {"storeId": "store-002", "name": None}]}  # fmt: skip


@pytest.fixture(autouse=True)
def completing(monkeypatch: pytest.MonkeyPatch) -> None:
    # set before CliRunner builds the command (as the shell's script sets it
    # before inv starts): the completion functions are attached only then
    monkeypatch.setenv(completion.COMPLETE_VAR, "complete_bash")


def invoke(fake: Any, env: dict[str, str]) -> Any:
    render.reset()
    environment = {"INV_AGENT": "/nonexistent/fake-agent.sock", "INV_TOKEN": None, **env}
    obj = Context(transport=fake) if fake is not None else None
    r = CliRunner().invoke(app, [], obj=obj, env=environment, prog_name="inv")
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    assert r.exit_code == 0, (r.stdout, r.stderr)
    assert r.stderr == "", r.stderr  # never a message, only candidates
    return r


def bash(fake: Any, line: str) -> list[str]:
    """The candidates bash gets for the last word of ``line`` (``""`` after a space)."""
    words = line.split()
    cword = len(words) if line.endswith(" ") else len(words) - 1
    env = {completion.COMPLETE_VAR: "complete_bash", "COMP_WORDS": line, "COMP_CWORD": str(cword)}
    out: str = invoke(fake, env).stdout
    return out.rstrip("\n").splitlines()  # nothing: a blank line (bash's $(...) drops it)


def other_shell(fake: Any, shell: str, line: str) -> str:
    env = {completion.COMPLETE_VAR: f"complete_{shell}", "_TYPER_COMPLETE_ARGS": line,
           "_TYPER_COMPLETE_FISH_ACTION": "get-args"}  # fmt: skip
    out: str = invoke(fake, env).stdout
    return out


def products(*skus: str) -> dict[str, Any]:
    return {"data": [product_obj(s, name=f"Name of {s}") for s in skus],
            "pagination": {"page": 1, "limit": 50, "total": len(skus)}}  # fmt: skip


def test_commands_and_options_complete_without_asking_the_agent() -> None:
    fake = FakeAgent()
    assert bash(fake, "inv st") == ["stock", "store"]
    assert bash(fake, "inv se") == ["sell"]
    assert bash(fake, "inv transfer re") == ["receive"]
    assert {"--store", "--json", "--help"} <= set(bash(fake, "inv stock show PROD-001 --"))
    assert fake.sent == []


def test_skus_from_the_agent_by_prefix() -> None:
    fake = FakeAgent().on("GET", "/api/v1/products", products("PROD-001", "PROD-002"))
    assert bash(fake, "inv stock show PROD-00") == ["PROD-001", "PROD-002"]
    assert fake.last.query == {"skuPrefix": "PROD-00", "limit": "50"}
    assert bash(fake, "inv reserve PR") == ["PROD-001", "PROD-002"]
    assert bash(fake, "inv stock add ") == ["PROD-001", "PROD-002"]
    assert fake.last.query == {"limit": "50"}  # nothing typed yet: the first 50
    assert bash(fake, "inv sell PROD-0") == ["PROD-001", "PROD-002"]  # the counter's own
    assert bash(fake, "inv receive P") == ["PROD-001", "PROD-002"]
    assert bash(fake, "inv reservation list --sku PROD-00") == ["PROD-001", "PROD-002"]


def test_zsh_and_fish_show_what_each_candidate_is() -> None:
    fake = FakeAgent().on("GET", "/api/v1/products", products("PROD-001", "PROD-002"))
    assert other_shell(fake, "zsh", "inv stock show PROD") == (
        '_arguments \'*: :(("PROD-001":"Name of PROD-001"\n"PROD-002":"Name of PROD-002"))\'\n'
    )
    assert other_shell(fake, "fish", "inv stock show PROD").splitlines() == [
        "PROD-001\tName of PROD-001",
        "PROD-002\tName of PROD-002",
    ]


def test_store_ids_and_any_for_a_reservation() -> None:
    fake = FakeAgent().on("GET", "/api/v1/stores", STORES)
    assert bash(fake, "inv stock show PROD-001 --store ") == ["store-001", "store-002"]
    assert bash(fake, "inv stock show PROD-001 -s store-00") == ["store-001", "store-002"]
    assert bash(fake, "inv reserve PROD-001 1 --store ") == ["store-001", "store-002", "any"]
    assert bash(fake, "inv transfer create PROD-001:1 --to store-0") == ["store-001", "store-002"]
    assert bash(fake, "inv store show store-002") == ["store-002"]
    assert other_shell(fake, "fish", "inv store show s").splitlines()[0] == (
        "store-001\tMadrid Centro"
    )


def test_reservation_ids_whole_pending_ones_first() -> None:
    pending = [reservation_obj("ca65956e-0002", "PENDING")]
    every = [reservation_obj("ca65956e-0001", "CONFIRMED", sku="PROD-002"), *pending]
    fake = FakeAgent().on("GET", RES, {"data": pending}).on("GET", RES, {"data": every})
    assert bash(fake, "inv confirm ca65") == ["ca65956e-0002", "ca65956e-0001"]
    assert [s.query for s in fake.sent] == [
        {"status": "PENDING", "idPrefix": "ca65", "limit": "50"},
        {"idPrefix": "ca65", "limit": "50"},
    ]
    fake = FakeAgent().on("GET", RES, {"data": pending}).on("GET", RES, {"data": every})
    assert other_shell(fake, "fish", "inv cancel ca65").splitlines() == [
        "ca65956e-0002\tPROD-001 ×3 store-001 PENDING",
        "ca65956e-0001\tPROD-002 ×3 store-001 CONFIRMED",
    ]


def test_transfer_and_routing_ids() -> None:
    transfers = [
        {"transferId": "T-7K3M-0000-0000", "fromStoreId": "store-001", "toStoreId": "store-002",
         "status": "RECEIVED"},
        {"transferId": "T-7K3M-9XQ2-P8RA", "fromStoreId": "store-002", "toStoreId": "store-001",
         "status": "SHIPPED"},
    ]  # fmt: skip
    fake = (
        FakeAgent()
        .on("GET", "/api/v1/transfers", {"data": transfers})
        .on("GET", "/api/v1/routings", {"data": [{"requestId": "ord-1", "sku": "PROD-001",
                                                  "quantity": 2, "status": "granted"}]})
    )  # fmt: skip
    assert bash(fake, "inv transfer receive T-7K") == ["T-7K3M-9XQ2-P8RA", "T-7K3M-0000-0000"]
    assert fake.last.query == {"idPrefix": "T-7K", "limit": "50"}  # open ones first ^
    assert bash(fake, "inv reservation routing o") == ["ord-1"]


class Recording:
    """A transport that answers after ``fail``, recording the timeouts it is given."""

    def __init__(self, fail: Exception | None = None, reply: Any = None) -> None:
        self.timeouts: list[float] = []
        self.fail, self.reply = fail, reply

    def request(
        self, method: str, url: str, content: bytes | None, headers: dict[str, str], timeout: float
    ) -> Response:
        self.timeouts.append(timeout)
        if self.fail is not None:
            raise self.fail
        return Response(200, json.dumps(self.reply).encode())

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    "agent",
    [
        Recording(ConnectFailed("no such file")),
        Recording(TimedOut("read")),
        Recording(reply={"data": [{"no": "sku"}]}),  # an answer of another shape
        Recording(reply=["not", "an", "object"]),
        FakeAgent().on("GET", RES, {"error": "bad token"}, status=401),
        FakeAgent().on("GET", RES, b"<html>proxy error</html>", status=502),
    ],
)
def test_a_failing_agent_completes_nothing_and_says_nothing(agent: Any) -> None:
    for line in ("inv stock show PR", "inv confirm ", "inv transfer ship T", "inv stock show -s "):
        assert bash(agent, line) == []
    if isinstance(agent, Recording):
        assert agent.timeouts and max(agent.timeouts) <= completion.TIMEOUT


def test_no_agent_at_all_completes_nothing() -> None:
    assert bash(None, "inv stock show PR") == []  # INV_AGENT: a socket that isn't there


def test_the_functions_are_attached_only_while_the_shell_asks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # typer reads each one's signature as it builds the commands: at every
    # start-up of every command, unless they are left out (B1)
    def ref_completion() -> Any:
        group: Any = typer.main.get_command(app)
        show = group.commands["stock"].commands["show"]
        [ref] = [p for p in show.params if p.name == "ref"]
        return ref._custom_shell_complete

    assert ref_completion() is not None
    monkeypatch.delenv(completion.COMPLETE_VAR)
    assert ref_completion() is None


def test_show_and_install_completion_for_each_shell(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(completion.COMPLETE_VAR)
    # the shell named, not detected (the detection reads this process's parent)
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
    monkeypatch.setenv("HOME", str(tmp_path))
    runner = CliRunner()
    scripts = {
        "bash": "complete -o default -F _inv_completion inv",
        "zsh": "compdef _inv_completion inv",
        "fish": "complete --command inv --no-files",
    }
    for shell, line in scripts.items():
        r = runner.invoke(app, ["--show-completion", shell], prog_name="inv")
        assert r.exit_code == 0 and line in r.stdout and "_INV_COMPLETE=complete_" in r.stdout
    r = runner.invoke(app, ["--install-completion", "bash"], prog_name="inv")
    assert r.exit_code == 0, r.output
    assert "_INV_COMPLETE=complete_bash" in (tmp_path / ".bash_completions" / "inv.sh").read_text()
    assert "source" in (tmp_path / ".bashrc").read_text()


def test_completion_asks_with_the_stored_login(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clerk who logged in to a TCP agent gets completions from it: the
    request carries her login, as any command's would."""
    from inventory_cli import credentials

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    target = "http://till.example:8080"
    login = credentials.StoredLogin(
        "ana", "clerk", ["store-001"], "tok-ana", "2999-01-01T00:00:00Z"
    )
    credentials.save(target, login)
    fake = FakeAgent().on("GET", "/api/v1/products", products("PROD-001"))
    words = "inv sell PROD"
    env = {completion.COMPLETE_VAR: "complete_bash", "COMP_WORDS": words, "COMP_CWORD": "2",
           "INV_AGENT": target, "XDG_CONFIG_HOME": str(tmp_path / "config")}  # fmt: skip
    assert invoke(fake, env).stdout.split() == ["PROD-001"]
    assert fake.last.headers["Authorization"] == "Bearer tok-ana"
