"""``inv product add|update|list|show`` in process against a fake agent."""

from __future__ import annotations

from tests.cli_support import FakeAgent, error_of, product_obj, run, run_json, table_rows

PRODUCTS = "/api/v1/products"


def test_product_add() -> None:
    fake = FakeAgent().on("POST", PRODUCTS, product_obj("LAMP-1", name="Desk lamp"), status=201)
    r = run(fake, "product", "add", "LAMP-1", "--name", "Desk lamp", "--price", "19.99",
            "--category", "lighting", "--description", "LED, warm white")  # fmt: skip
    assert r.stderr == ""
    assert r.stdout.startswith("Product LAMP-1") and "Desk lamp" in r.stdout
    assert fake.last.body == {
        "sku": "LAMP-1",
        "name": "Desk lamp",
        "price": 19.99,
        "category": "lighting",
        "description": "LED, warm white",
    }
    assert fake.last.headers["Content-Type"] == "application/json"
    run(fake, "product", "add", "LAMP-2", "--name", "x", "--id", "my-id")
    assert fake.last.body == {
        "sku": "LAMP-2", "name": "x", "price": 0.0, "category": "", "description": "",
        "id": "my-id",
    }  # fmt: skip


def test_product_show_by_sku_or_id() -> None:
    p = product_obj("PROD-002", name="Mouse Logitech M185")
    fake = FakeAgent().on("GET", f"{PRODUCTS}/PROD-002", p).on("GET", f"{PRODUCTS}/id-2", p)
    assert run_json(fake, "product", "show", "PROD-002") == p
    r = run(fake, "product", "show", "id-2")
    lines = {line.split()[0]: line.split()[1:] for line in r.stdout.splitlines()[1:] if line}
    assert lines["name"] == ["Mouse", "Logitech", "M185"] and lines["active"] == ["True"]


def test_product_update_sends_only_the_fields_given() -> None:
    fake = FakeAgent().on("PATCH", f"{PRODUCTS}/LAMP-1", product_obj("LAMP-1", active=False))
    updated = run_json(fake, "product", "update", "LAMP-1", "--price", "17.5", "--inactive")
    assert updated["active"] is False
    assert fake.last.body == {"price": 17.5, "active": False}
    run(fake, "product", "update", "LAMP-1", "--name", "Desk lamp v2", "--active")
    assert fake.last.body == {"name": "Desk lamp v2", "active": True}


def test_product_update_with_nothing_to_change_is_exit_2_before_sending() -> None:
    fake = FakeAgent()
    r = run(fake, "product", "update", "PROD-001", code=2)
    assert "nothing to change: give --name, --price" in error_of(r)
    assert fake.sent == []


def test_product_list_pages_up_to_the_limit() -> None:
    page1 = {"data": [product_obj(f"P-{i:04d}") for i in range(1000)]}
    page2 = {"data": [product_obj("P-1000", active=False, price=2.5)]}
    fake = FakeAgent().on("GET", PRODUCTS, page1).on("GET", PRODUCTS, page2)
    listed = run_json(
        fake, "product", "list", "--category", "lighting", "-q", "P-", "--limit", "1500"
    )
    assert len(listed) == 1001
    assert [s.query for s in fake.sent] == [
        {"category": "lighting", "q": "P-", "page": "1", "limit": "1000"},
        {"category": "lighting", "q": "P-", "page": "2", "limit": "500"},
    ]
    fake = FakeAgent().on("GET", PRODUCTS, {"data": [product_obj("A"), product_obj("B")]})
    assert len(run_json(fake, "product", "list", "--limit", "2")) == 2
    assert fake.last.query == {"page": "1", "limit": "2"}


def test_product_list_table() -> None:
    fake = FakeAgent().on("GET", PRODUCTS, {"data": [product_obj("L-1", active=False, price=3)]})
    rows = table_rows(run(fake, "product", "list").stdout)
    assert rows["SKU"] == ["SKU", "Name", "Category", "Price", "Active", "ID"]
    assert rows["L-1"] == ["L-1", "Laptop Dell XPS 13", "laptops", "3.00", "no", "id-L-1"]


def test_product_errors() -> None:
    fake = (
        FakeAgent()
        .on("POST", PRODUCTS, {"error": "product 'PROD-001' already exists"}, status=409)
        .on("GET", f"{PRODUCTS}/NOPE-1", {"error": "product 'NOPE-1' not found"}, status=404)
    )
    assert "already exists" in error_of(
        run(fake, "product", "add", "PROD-001", "--name", "A", code=4)
    )
    assert "NOPE-1" in error_of(run(fake, "product", "show", "NOPE-1", code=3))
    fake.on("POST", PRODUCTS, {"error": "sku: 'BAD SKU' is not a valid SKU"}, status=422)
    fake.replies[("POST", PRODUCTS)].pop(0)
    assert "sku" in error_of(run(fake, "product", "add", "BAD SKU", "--name", "x", code=2))
    sent = len(fake.sent)
    r = run(fake, "product", "add", "X-1", code=2)  # --name is required
    assert "Missing option '--name'" in r.stderr and len(fake.sent) == sent
    r = run(fake, "product", "add", "X-1", "--name", "x", "--price", "-1", code=2)
    assert "Invalid value for '--price'" in r.stderr
