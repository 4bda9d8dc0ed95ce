"""B3: ``inv import`` of a 100,000-row stock CSV (the whole CLI process, into
a fresh agent whose catalogue already holds the products), beside
``sqlite-utils insert`` of the same file into a fresh database.
Runs alternate (floor, figure, ...); each figure run uses a fresh agent, as
each floor run uses a fresh database.

Also the data builders other benchmarks use (API imports in chunks)."""

from __future__ import annotations

import csv
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import Fleet, api, inv_bin, inv_env, median, summary, wall
from tests.helpers import bin_path


def sku(i: int) -> str:
    return f"SKU-{i:05d}"


def store(j: int) -> str:
    return f"store-{j:03d}"


def quantity(i: int, j: int) -> int:
    return (i * 31 + j * 7) % 997 + 1  # never 0: every row is a change


def load_products(agent: Any, count: int) -> None:
    rows = [
        {"line": i + 2, "sku": sku(i), "name": f"Product {i}", "category": f"cat-{i % 50}"}
        for i in range(count)
    ]
    result = api(agent, "POST", "/api/v1/imports/products", {"rows": rows})
    assert result["applied"] == count, result


def load_stock(agent: Any, products: int, stores: int, chunk: int = 100_000) -> float:
    """products × stores stock rows (a count each) through API imports of
    ``chunk`` rows; returns the seconds it took."""
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []

    def flush() -> None:
        result = api(agent, "POST", "/api/v1/imports/stock", {"rows": rows})
        assert result["applied"] == len(rows), result
        rows.clear()

    for j in range(stores):
        for i in range(products):
            rows.append(
                {
                    "line": len(rows) + 2,
                    "sku": sku(i),
                    "storeId": store(j),
                    "quantity": quantity(i, j),
                }
            )
            if len(rows) >= chunk:
                flush()
    if rows:
        flush()
    return time.perf_counter() - start


def write_csv(path: Path, products: int, stores: int) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["sku", "storeId", "quantity"])
        for j in range(stores):
            for i in range(products):
                w.writerow([sku(i), store(j), quantity(i, j)])


def ledger_inserts_alone(db: Path, products: int, stores: int) -> float:
    """A reference for B3, not a goal: the seconds the rows an import must
    leave in the ledger take to insert, with nothing else. The same rows as the
    bulk import path writes (an event with its JSON body, a movement and a
    stock row per CSV row), prepared beforehand and written by that path's own
    ``flush``; timed from BEGIN to COMMIT. If this alone is above the floor, no
    tuning of the rest brings ``inv import`` to 1x of it."""
    from agent import hlc
    from agent.ledger.engine import Engine, NewStockMovements, dumps
    from agent.ledger.schema import migrate
    from agent.ledger.store import connect

    conn = connect(db)
    migrate(conn)
    bulk = NewStockMovements(Engine("bench", hlc.HybridLogicalClock()), conn)
    for n, (j, i) in enumerate((j, i) for j in range(stores) for i in range(products)):
        seq, stamp, qty = n + 1, (1_800_000_000_000 << 16) + n, quantity(i, j)
        mv = {"sku": sku(i), "storeId": store(j), "kind": "count", "quantity": qty,
              "reason": "import", "actor": "local"}  # fmt: skip
        event = {"id": f"bench:{seq}", "origin": "bench", "seq": seq, "hlc": stamp,
                 "type": "stock.movement", "schemaVersion": 1, "data": mv}  # fmt: skip
        bulk.events.append(("bench", seq, stamp, "stock.movement", dumps(event)))
        bulk.movements.append((f"bench:{seq}", sku(i), store(j), "count", qty, "import",
                               "local", None, stamp, "bench", None, 0))  # fmt: skip
        bulk.stock.append((sku(i), store(j), qty, stamp, "bench", f"bench:{seq}", stamp, 0,
                           "bench"))  # fmt: skip
    bulk.first_seq, bulk.seq, bulk.last_hlc = 1, products * stores, stamp
    start = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    bulk.flush()
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def import_csv(
    fleet: Fleet, products: int = 1000, stores: int = 100, runs: int = 5
) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="invb3", dir="/tmp"))
    fleet.homes.append(work)
    data = work / "stock.csv"
    write_csv(data, products, stores)
    sqlite_utils = bin_path("sqlite-utils")
    figure, floor = [], []
    for r in range(runs):
        db = work / f"floor{r}.db"
        floor.append(
            wall(
                [
                    sqlite_utils,
                    "insert",
                    str(db),
                    "t",
                    str(data),
                    "--csv",
                    "--no-detect-types",
                    "--batch-size",
                    "100000",
                ]
            )
        )
        db.unlink()
        agent = fleet.agent(f"store-b3-{r}")
        load_products(agent, products)
        env = inv_env(agent)
        start = time.perf_counter()
        proc = subprocess.run(
            [inv_bin(), "import", str(data), "--json"], capture_output=True, text=True, env=env
        )
        figure.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise RuntimeError(f"inv import exited {proc.returncode}: {proc.stderr[-2000:]}")
        if f'"applied": {products * stores}' not in proc.stdout:
            raise RuntimeError(f"inv import did not apply every row: {proc.stdout[:500]}")
        agent.stop()
    insert_only = [ledger_inserts_alone(work / f"bare{r}.db", products, stores) for r in range(3)]
    return {
        "rows": products * stores,
        "bytes": os.path.getsize(data),
        "ledgerInsertsAlone": summary(insert_only),
        "figure": summary(figure),
        "floor": summary(floor),
        "ratio": median(figure) / median(floor),
    }
