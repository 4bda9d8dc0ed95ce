"""The store directory and safety stock between real agents over a real
nats-server: an admin describes a store and sets a SKU's safety stock at
one agent, the other sees both (its directory, its availability figures
for online orders) and the two converge. The merge rules themselves are
tested in process (tests/unit/test_directory_merge.py)."""

from __future__ import annotations

import json

from tests import synckit
from tests.helpers import run_cli, wait_for
from tests.natsfix import NatsServer
from tests.synckit import AgentFactory, wait_converged

nats_server = synckit.nats_server
peer = synckit.peer


def test_a_directory_change_at_one_store_is_seen_at_another(
    nats_server: NatsServer, peer: AgentFactory
) -> None:
    a = peer("store-001", nats_server, demo=True)
    b = peer("store-002", nats_server)
    r = a.client().patch(
        "/api/v1/stores/store-002", json={"name": "Centro", "priority": 1, "safetyStock": 2}
    )
    assert r.status_code == 200, r.text
    r = a.client().put("/api/v1/products/PROD-001/safety-stock", json={"safetyStock": 4})
    assert r.status_code == 200, r.text

    def entry_at_b() -> dict[str, object] | None:
        r = b.client().get("/api/v1/stores/store-002")
        return r.json() if r.status_code == 200 and r.json()["listed"] else None

    seen = wait_for(entry_at_b, what="store-002's directory entry to reach store-002")
    assert (seen["name"], seen["priority"], seen["safetyStock"]) == ("Centro", 1, 2)
    wait_converged(a, b, stores=("store-001", "store-002"))
    # the SKU's setting came too: store-001 keeps 4 of its 10 from online orders
    r = b.client().get("/api/v1/products/PROD-001/availability", params={"storeId": "store-001"})
    [row] = r.json()["stores"]
    assert (row["safetyStock"], row["availableOnline"]) == (4, 6)
    # and the CLI at b lists what a wrote
    listed = run_cli(b, "store", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    names = {s["storeId"]: s["name"] for s in json.loads(listed.stdout)}
    assert names == {"store-001": None, "store-002": "Centro"}
