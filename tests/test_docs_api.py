"""docs/API.md and config.example.yaml stay true to the code.

docs/API.md documents each endpoint under a heading ``### `METHOD /path` ``;
the set of those headings must equal the routes a real agent serves (its
OpenAPI document), in both directions.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from agent import config
from tests.helpers import ROOT, Agent

API_DOC = ROOT / "docs" / "API.md"
HEADING = re.compile(r"^### `(GET|POST|PUT|PATCH|DELETE) (/\S*)`\s*$", re.MULTILINE)
METHODS = {"get", "post", "put", "patch", "delete"}
UNDOCUMENTED = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


def documented_endpoints() -> set[tuple[str, str]]:
    text = API_DOC.read_text()
    found = HEADING.findall(text)
    assert len(found) == len(set(found)), "an endpoint is documented twice in docs/API.md"
    return set(found)


def served_endpoints(agent: Agent) -> set[tuple[str, str]]:
    response = agent.client().get("/openapi.json")
    assert response.status_code == 200
    return {
        (method.upper(), path)
        for path, operations in response.json()["paths"].items()
        if path not in UNDOCUMENTED
        for method in operations
        if method in METHODS
    }


def test_api_doc_headings_match_served_openapi(agent: Agent) -> None:
    documented = documented_endpoints()
    served = served_endpoints(agent)
    assert documented, f"no '### `METHOD /path`' headings found in {API_DOC}"
    missing = sorted(served - documented)
    unknown = sorted(documented - served)
    assert not missing, f"served but not documented in docs/API.md: {missing}"
    assert not unknown, f"documented in docs/API.md but not served: {unknown}"


def test_config_example_loads_and_is_the_defaults() -> None:
    path = ROOT / "config.example.yaml"
    loaded = config.load(path, env={})
    defaults = config.AgentConfig()
    assert dataclasses.asdict(loaded) == dataclasses.asdict(defaults)
    text = path.read_text()
    for f in dataclasses.fields(defaults):
        value = getattr(defaults, f.name)
        names = (
            [f"{f.name}.{g.name}" for g in dataclasses.fields(value)]
            if dataclasses.is_dataclass(value)
            else [f.name]
        )
        for name in names:
            key = name.rsplit(".", 1)[-1]
            assert re.search(rf"^\s*#?\s*{key}:", text, re.MULTILINE), (
                f"setting {name} is missing from config.example.yaml"
            )


def test_config_example_documents_every_environment_variable() -> None:
    text = (ROOT / "config.example.yaml").read_text()
    defaults = config.AgentConfig()
    env: dict[str, str] = {}
    for f in dataclasses.fields(defaults):
        value = getattr(defaults, f.name)
        if dataclasses.is_dataclass(value):
            env.update({f"INV_{f.name}_{g.name}".upper(): "" for g in dataclasses.fields(value)})
        else:
            env[f"INV_{f.name}".upper()] = ""
    missing = sorted(name for name in env if name not in text)
    assert not missing, f"config.example.yaml does not name {missing}"
    # and those are the names the loader reads
    probe = {"INV_STORE_ID": "s-1", "INV_NATS_SERVERS": "nats://a:1,nats://b:2"}
    cfg = config.load(Path(ROOT / "config.example.yaml"), env=probe)
    assert cfg.store_id == "s-1"
    assert cfg.nats.servers == ["nats://a:1", "nats://b:2"]
