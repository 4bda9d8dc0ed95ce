from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import inproc
from tests.helpers import Agent, free_port, short_tmpdir
from tests.inproc import InProcAgent

# The longest tests (the simulator's campaign, ~70 s; the schemathesis walk,
# ~40 s) go first: handed out last, one of them runs on alone on one of the
# two workers while the other has nothing left to do.
LONGEST_FIRST = (
    "tests/test_sim.py::test_a_bounded_campaign_passes",
    "tests/test_fuzz.py::test_schemathesis_finds_no_server_error_and_no_response_off_its_schema",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.nodeid not in LONGEST_FIRST)  # stable: the rest keep order


@pytest.fixture
def make_agent() -> Iterator[Any]:
    """Factory: ``make_agent("store-001", tcp=True, demo=True, args=[...])`` starts a
    real inv-agent process on a fresh ledger; all are stopped at teardown."""
    agents: list[Agent] = []
    homes = []

    def factory(
        store_id: str = "store-001",
        *,
        tcp: bool = False,
        demo: bool = True,
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
        start: bool = True,
    ) -> Agent:
        home = short_tmpdir()
        homes.append(home)
        extra = list(args or [])
        if demo:
            extra.append("--demo-data")
        agent = Agent(
            store_id, home, port=free_port() if tcp else None, extra_args=extra, env=env or {}
        )
        agents.append(agent)
        return agent.start() if start else agent

    yield factory
    for agent in agents:
        agent.stop()
    for home in homes:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def agent(make_agent: Any) -> Agent:
    """One store-001 agent with the seed's demo data, socket and TCP."""
    return make_agent("store-001", tcp=True)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def shared_agent() -> Iterator[Agent]:
    """One store-001 agent (demo data, socket and TCP) shared by a module's
    tests that only read, or whose writes are refused."""
    home = short_tmpdir()
    agent = Agent("store-001", home, port=free_port(), extra_args=["--demo-data"]).start()
    yield agent
    agent.stop()
    shutil.rmtree(home, ignore_errors=True)


# ------------------------------------------------------------ in-process
@pytest.fixture
def anyio_backend() -> str:
    """In-process tests (``@pytest.mark.anyio``) run on asyncio."""
    return "asyncio"


@pytest.fixture
async def make_inproc(anyio_backend: str, tmp_path: Path) -> AsyncIterator[Any]:
    """Factory: ``await make_inproc("store-001", demo=True, env={"INV_...": ...},
    config_file=path, limits=...)`` builds and starts an agent in this process
    (``tests.inproc``), on its own data dir; all are stopped and closed at
    teardown."""
    async with contextlib.AsyncExitStack() as stack:
        made = 0

        async def factory(
            store_id: str = "store-001", *, demo: bool = True, **options: Any
        ) -> InProcAgent:
            nonlocal made
            made += 1
            cfg = inproc.config(tmp_path / f"a{made}", store_id, demo=demo, **options)
            return await stack.enter_async_context(inproc.running(cfg))

        yield factory


@pytest.fixture
async def api_agent(make_inproc: Any) -> InProcAgent:
    """One in-process store-001 agent with the seed's demo data."""
    return await make_inproc()  # type: ignore[no-any-return]
