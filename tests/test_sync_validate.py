"""Unit tests of agent/sync/validate.py: what a peer's event must look like
before it may touch the ledger, and the reason each bad one is quarantined
with. Pure logic: no agent, no NATS."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from agent import hlc
from agent.domain import MAX_BATCH_ROWS
from agent.ledger.engine import SCHEMA_VERSION, TYPE_SCHEMA
from agent.sync import validate
from agent.sync.validate import Rejected

NOW = 1_800_000_000_000  # ms; a fixed "local wall clock"
SKEW = 300_000  # the default max_clock_skew, in ms
SUBJECT = "inv.default.ev.store-001"


def event(type_: str = "stock.movement", **changes: Any) -> dict[str, Any]:
    """A valid event of store-001, seq 7, stamped one second before NOW."""
    data: dict[str, Any] = {
        "stock.movement": {
            "sku": "PROD-001",
            "storeId": "store-001",
            "kind": "receive",
            "quantity": 5,
            "reason": "delivery",
            "actor": "maria",
        },
        "product.upserted": {
            "sku": "PROD-001",
            "fields": {"name": "Laptop", "price": 599.99, "active": True},
            "basis": {"store-001": 6},
        },
        "reservation.changed": {
            "reservation": {
                "id": "r-1",
                "sku": "PROD-001",
                "storeId": "store-001",
                "quantity": 2,
                "customerId": None,
                "status": "PENDING",
                "orderId": None,
                "expiresAtMs": NOW + 600_000,
                "createdAtMs": NOW - 1000,
                "updatedAtMs": NOW - 1000,
            }
        },
        "store.upserted": {
            "storeId": "store-002",
            "fields": {
                "name": "Centro",
                "address": "Gran Vía 1",
                "lat": 40.42,
                "lon": -3.7,
                "priority": 1,
                "online": True,
                "safetyStock": 2,
            },
            "basis": {"store-001": 6},
        },
        "stock.settings": {
            "sku": "PROD-001",
            "storeId": "store-002",
            "fields": {"safetyStock": 3},
            "basis": {"store-001": 6},
        },
        "stock.reorder": {
            "sku": "PROD-001",
            "storeId": "store-002",
            "fields": {"reorderPoint": 3, "maxStock": 20, "reorderQty": None},
            "basis": {"store-001": 6},
        },
        "transfer.changed": {
            "transfer": {
                "id": "t-1",
                "fromStoreId": "store-001",
                "toStoreId": "store-002",
                "note": "",
                "state": "CANCELLED",
                "lines": [{"sku": "PROD-001", "quantity": 4}],
                "actor": "clerk",
                "createdAtMs": NOW - 5000,
                "shippedAtMs": NOW - 4000,
                "cancelledAtMs": NOW - 3000,
                "updatedAtMs": NOW - 3000,
            },
            "claims": [{"sku": "PROD-001", "quantity": 4}],
        },
        "transfer.received": {
            "receipt": {
                "id": "r-1",
                "transferId": "t-1",
                "fromStoreId": "store-002",
                "toStoreId": "store-001",
                "lines": [{"sku": "PROD-001", "received": 3, "damaged": 1}],
                "actor": "clerk",
                "receivedAtMs": NOW - 2000,
            }
        },
        "stock.batch": {
            "movements": [
                {
                    "sku": "PROD-001",
                    "storeId": "store-001",
                    "kind": "count",
                    "quantity": 5,
                    "reason": "import",
                    "actor": "maria",
                },
                {
                    "sku": "PROD-001",
                    "storeId": "store-002",
                    "kind": "receive",
                    "quantity": 2,
                    "reason": "import",
                    "actor": "maria",
                },
                {
                    "sku": "PROD-002",
                    "storeId": "store-001",
                    "kind": "count",
                    "quantity": 0,
                    "reason": "",
                    "actor": "",
                    "basis": {"store-002": 4},
                },
            ]
        },
        "alert.raised": {
            "alert": {
                "kind": "low",
                "sku": "PROD-001",
                "storeId": "store-001",
                "before": 4,
                "after": 2,
                "reorderPoint": 3,
                "cause": "store-001:6",
                "raisedAtMs": NOW - 1000,
            }
        },
    }[type_]
    e: dict[str, Any] = {
        "id": "store-001:7",
        "origin": "store-001",
        "seq": 7,
        "hlc": hlc.pack(NOW - 1000, 3),
        "type": type_,
        "schemaVersion": TYPE_SCHEMA[type_],
        "data": data,
    }
    e.update(changes)
    return e


def check(e: Any, subject: str = SUBJECT, now: int = NOW) -> dict[str, Any] | Rejected:
    payload = e if isinstance(e, bytes) else json.dumps(e).encode()
    return validate.check(subject, payload, now, SKEW)


def rejected(e: Any, reason: str, subject: str = SUBJECT, now: int = NOW) -> Rejected:
    result = check(e, subject, now)
    assert isinstance(result, Rejected), f"accepted: {e!r}"
    assert result.reason == reason, result
    assert result.detail
    return result


# ------------------------------------------------------------------ accepted
@pytest.mark.parametrize("type_", list(TYPE_SCHEMA))
def test_a_valid_event_of_each_type_is_returned_as_parsed(type_: str) -> None:
    e = event(type_)
    assert check(e) == e


def test_each_type_carries_its_own_schema_version_and_the_newest_is_four() -> None:
    assert SCHEMA_VERSION == 4
    assert TYPE_SCHEMA == {
        "product.upserted": 1,
        "stock.movement": 1,
        "reservation.changed": 1,
        "store.upserted": 2,
        "stock.settings": 2,
        "stock.reorder": 3,
        "transfer.changed": 3,
        "transfer.received": 3,
        "alert.raised": 3,
        "stock.batch": 4,
    }
    # an event of an old type may say the newer version too (it is the same shape)
    e = event("stock.movement", schemaVersion=2)
    assert check(e) == e


def test_directory_fields_may_be_null_to_unset_them_and_at_their_limits() -> None:
    e = event("store.upserted")
    e["data"]["fields"] = dict.fromkeys(validate.STORE_FIELDS)
    assert check(e) == e
    e["data"]["fields"] = {
        "lat": -90,
        "lon": 180.0,
        "priority": 1_000_000,
        "safetyStock": 0,
        "name": "é" * 200,
    }
    assert check(e) == e
    clear = event("stock.settings")
    clear["data"]["fields"] = {"safetyStock": None}
    assert check(clear) == clear


def test_a_count_and_a_negative_adjust_are_valid_movements() -> None:
    count = event()
    count["data"].update(kind="count", quantity=0, basis={"store-001": 6, "store-002": 3})
    assert check(count) == count
    adjust = event()
    adjust["data"].update(kind="adjust", quantity=-4)
    assert check(adjust) == adjust


def test_a_confirmation_carrying_its_sale_movement_is_valid() -> None:
    e = event("reservation.changed")
    e["data"]["reservation"].update(status="CONFIRMED", orderId="o-9")
    e["data"]["movement"] = {
        "sku": "PROD-001",
        "storeId": "store-001",
        "kind": "sell",
        "quantity": -2,
    }
    assert check(e) == e


def test_a_timestamp_just_inside_the_allowed_skew_is_accepted() -> None:
    e = event(hlc=hlc.pack(NOW + SKEW, 0))
    assert check(e) == e
    old = event(hlc=hlc.pack(NOW - 86_400_000, 0))  # a day old: fine (offline stores)
    assert check(old) == old


# ----------------------------------------------------------------- malformed
@pytest.mark.parametrize(
    "payload",
    [b"", b"{", b"not json", b"\xff\xfe\x00garbage", b'{"id": "store-001:7",'],
    ids=["empty", "truncated", "text", "binary", "cut-off"],
)
def test_bytes_that_are_not_json_are_malformed(payload: bytes) -> None:
    result = rejected(payload, "malformed")
    assert result.event_id is None


@pytest.mark.parametrize("payload", [[], "event", 7, None, [event()]])
def test_json_that_is_not_an_object_is_malformed(payload: Any) -> None:
    rejected(payload, "malformed")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("origin", None),
        ("origin", 1),
        ("origin", ""),
        ("origin", "store 001"),
        ("seq", "7"),
        ("seq", 0),
        ("seq", -1),
        ("seq", 7.0),
        ("seq", True),
        ("hlc", "123"),
        ("hlc", -5),
        ("hlc", 1.5),
        ("type", None),
        ("type", 3),
        ("schemaVersion", "1"),
        ("schemaVersion", 0),
        ("schemaVersion", None),
        ("data", None),
        ("data", []),
        ("data", "x"),
    ],
)
def test_envelope_fields_of_the_wrong_type_are_malformed(field: str, value: Any) -> None:
    result = rejected(event(**{field: value}), "malformed")
    assert "envelope" in result.detail


@pytest.mark.parametrize("field", ["origin", "seq", "hlc", "type", "schemaVersion", "data"])
def test_a_missing_envelope_field_is_malformed(field: str) -> None:
    e = event()
    del e[field]
    rejected(e, "malformed")


@pytest.mark.parametrize(
    "eid", ["store-001:8", "store-002:7", "store-001", "7", "store-001:07", None, 7]
)
def test_an_id_that_is_not_origin_colon_seq_is_malformed(eid: Any) -> None:
    result = rejected(event(id=eid), "malformed")
    assert "origin:seq" in result.detail
    assert result.event_id == (eid if isinstance(eid, str) else None)


def test_an_unknown_event_type_is_malformed() -> None:
    result = rejected(event(type="stock.teleported"), "malformed")
    assert "stock.teleported" in result.detail
    assert result.event_id == "store-001:7"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("sku", None),
        ("sku", "bad sku with spaces"),
        ("sku", 12),
        ("storeId", ""),
        ("storeId", None),
        ("kind", "steal"),
        ("kind", None),
        ("quantity", "5"),
        ("quantity", 5.5),
        ("quantity", True),
        ("quantity", 10**12),
        ("quantity", -(10**12)),
        ("basis", {"store-001": "6"}),
        ("basis", {"store-001": -1}),
        ("basis", [1, 2]),
    ],
)
def test_a_movement_with_a_bad_field_is_malformed(key: str, value: Any) -> None:
    e = event()
    e["data"][key] = value
    rejected(e, "malformed")


def test_a_count_cannot_set_a_negative_quantity() -> None:
    e = event()
    e["data"].update(kind="count", quantity=-1)
    rejected(e, "malformed")


@pytest.mark.parametrize(
    "fields",
    [
        {"price": "12.00"},
        {"price": -1},
        {"price": True},
        {"price": 1e13},
        {"active": "yes"},
        {"active": 1},
        {"name": 5},
        {"name": "x" * 2001},
        {"colour": "red"},
    ],
)
def test_a_product_with_a_bad_field_is_malformed(fields: dict[str, Any]) -> None:
    e = event("product.upserted")
    e["data"]["fields"] = fields
    rejected(e, "malformed")


@pytest.mark.parametrize(
    "data",
    [
        {"sku": "PROD-001", "fields": None},
        {"sku": "PROD-001", "fields": []},
        {"fields": {"name": "x"}},
        {"sku": "PROD-001", "fields": {"name": "x"}, "basis": [1]},
    ],
)
def test_a_product_with_a_bad_shape_is_malformed(data: dict[str, Any]) -> None:
    rejected(event("product.upserted", data=data), "malformed")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("quantity", 0),
        ("quantity", "2"),
        ("status", "STOLEN"),
        ("expiresAtMs", None),
        ("createdAtMs", "now"),
        ("customerId", 42),
        ("id", None),
        ("id", "x" * 129),
    ],
)
def test_a_reservation_with_a_bad_field_is_malformed(key: str, value: Any) -> None:
    e = event("reservation.changed")
    e["data"]["reservation"][key] = value
    rejected(e, "malformed")


def test_a_reservation_that_is_not_an_object_is_malformed() -> None:
    rejected(event("reservation.changed", data={"reservation": "r-1"}), "malformed")
    rejected(event("reservation.changed", data={}), "malformed")


def test_a_reservation_with_a_bad_sale_movement_is_malformed() -> None:
    e = event("reservation.changed")
    e["data"]["movement"] = {"sku": "PROD-001", "storeId": "store-001", "kind": "sell"}
    rejected(e, "malformed")


@pytest.mark.parametrize(
    "fields",
    [
        {"lat": 90.5},
        {"lat": -91},
        {"lon": 180.01},
        {"lat": "40.4"},
        {"lat": True},
        {"priority": 0},
        {"priority": 1_000_001},
        {"priority": 1.0},
        {"priority": "1"},
        {"online": "yes"},
        {"online": 1},
        {"safetyStock": -1},
        {"safetyStock": 10**12},
        {"safetyStock": 2.5},
        {"name": "x" * 201},
        {"address": ["Gran Vía"]},
        {"name": "\ud800"},  # a lone surrogate: not UTF-8
        {"colour": "red"},
    ],
)
def test_a_store_entry_with_a_bad_field_is_malformed(fields: dict[str, Any]) -> None:
    e = event("store.upserted")
    e["data"]["fields"] = fields
    rejected(e, "malformed")


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_coordinate_that_is_not_a_finite_number_is_malformed(value: float) -> None:
    e = event("store.upserted")
    e["data"]["fields"] = {"lat": value}
    rejected(json.dumps(e).encode(), "malformed")  # Python's JSON reads NaN and Infinity


@pytest.mark.parametrize(
    "data",
    [
        {"storeId": "any", "fields": {"name": "x"}},  # "any" asks for routing
        {"storeId": "a.b", "fields": {"name": "x"}},
        {"storeId": None, "fields": {"name": "x"}},
        {"fields": {"name": "x"}},
        {"storeId": "store-002", "fields": None},
        {"storeId": "store-002", "fields": {"name": "x"}, "basis": {"store-001": "6"}},
    ],
)
def test_a_store_entry_with_a_bad_shape_is_malformed(data: dict[str, Any]) -> None:
    rejected(event("store.upserted", data=data), "malformed")


@pytest.mark.parametrize(
    "data",
    [
        {"sku": "PROD-001", "storeId": "any", "fields": {"safetyStock": 1}},
        {"sku": "bad sku", "storeId": "store-002", "fields": {"safetyStock": 1}},
        {"sku": "PROD-001", "fields": {"safetyStock": 1}},
        {"sku": "PROD-001", "storeId": "store-002", "fields": {"safetyStock": -1}},
        {"sku": "PROD-001", "storeId": "store-002", "fields": {"safetyStock": "1"}},
        {"sku": "PROD-001", "storeId": "store-002", "fields": {"priority": 1}},
        {"sku": "PROD-001", "storeId": "store-002", "fields": [1]},
        {"sku": "PROD-001", "storeId": "store-002", "fields": {}, "basis": 5},
    ],
)
def test_stock_settings_with_a_bad_field_or_shape_are_malformed(data: dict[str, Any]) -> None:
    rejected(event("stock.settings", data=data), "malformed")


@pytest.mark.parametrize("type_", ["store.upserted", "stock.settings"])
def test_a_directory_event_claiming_schema_one_is_malformed(type_: str) -> None:
    """An agent of schema 1 would call it an unknown type and drop it for good,
    instead of holding it back: whoever wrote it is broken."""
    result = rejected(event(type_, schemaVersion=1), "malformed")
    assert "schemaVersion 2" in result.detail


@pytest.mark.parametrize("type_", ["store.upserted", "stock.settings"])
def test_an_agent_of_schema_one_holds_directory_events_back(
    type_: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What an agent from before the directory does with them: schema_too_new,
    kept and applied after its upgrade (the events of the older types, which
    carry 1, it keeps applying)."""
    monkeypatch.setattr(validate, "SCHEMA_VERSION", 1)
    result = rejected(event(type_), "schema_too_new")
    assert "upgrade" in result.detail
    assert check(event("stock.movement")) == event("stock.movement")


# ------------------------------------------------------------ origin checks
@pytest.mark.parametrize(
    "subject",
    [
        "inv.default.ev.store-002",  # another store's subject
        "inv.default.ev.store-0011",
        "inv.default.hb.store-001.x",  # not an event subject at all
        "inv.default.ev",
    ],
)
def test_an_event_on_another_stores_subject_is_an_origin_mismatch(subject: str) -> None:
    result = rejected(event(), "origin_mismatch", subject=subject)
    assert result.event_id == "store-001:7"
    assert subject in result.detail


def test_a_reservation_written_by_a_store_that_does_not_own_it_is_refused() -> None:
    """Single writer: only the agent of the store holding the stock writes a
    reservation of it. store-002 publishing one of store-001's is not_owner,
    even on its own subject with a consistent envelope."""
    e = event("reservation.changed", id="store-002:3", origin="store-002", seq=3)
    result = rejected(e, "not_owner", subject="inv.default.ev.store-002")
    assert "store-001" in result.detail and "store-002" in result.detail
    assert result.event_id == "store-002:3"


def test_a_non_owner_cannot_confirm_either() -> None:
    e = event("reservation.changed", id="store-002:4", origin="store-002", seq=4)
    e["data"]["reservation"]["status"] = "CONFIRMED"
    rejected(e, "not_owner", subject="inv.default.ev.store-002")


def test_any_store_may_write_product_movement_and_directory_events() -> None:
    """Movements, product fields and the directory have no single writer:
    store-002 may record a movement of store-001's stock (a transfer, a
    count), and describe any store."""
    for type_ in ("stock.movement", "product.upserted", "store.upserted", "stock.settings"):
        e = event(type_, id="store-002:9", origin="store-002", seq=9)
        assert check(e, subject="inv.default.ev.store-002") == e


# ------------------------------------------------------------------- clocks
def test_an_event_stamped_too_far_in_the_future_is_clock_skew() -> None:
    e = event(hlc=hlc.pack(NOW + SKEW + 1, 0))
    result = rejected(e, "clock_skew")
    assert result.event_id == "store-001:7"
    assert str(SKEW + 1) in result.detail


def test_ten_minutes_ahead_is_clock_skew_but_the_same_event_later_is_fine() -> None:
    e = event(hlc=hlc.pack(NOW + 600_000, 5))
    rejected(e, "clock_skew")
    assert check(e, now=NOW + 600_000) == e  # once our clock has caught up


def test_the_logical_counter_does_not_count_as_skew() -> None:
    e = event(hlc=hlc.pack(NOW + SKEW, hlc.LOGICAL_MASK))
    assert check(e) == e


# ------------------------------------------------------------------ schema
def test_a_newer_schema_version_is_held_back_as_schema_too_new() -> None:
    e = event(schemaVersion=SCHEMA_VERSION + 1)
    result = rejected(e, "schema_too_new")
    assert result.event_id == "store-001:7"
    assert "upgrade" in result.detail


def test_a_newer_schema_is_held_back_even_with_a_type_or_data_we_do_not_know() -> None:
    """A future schema may add types and fields: hold it back (to apply after
    an upgrade), don't call it malformed."""
    e = event(schemaVersion=SCHEMA_VERSION + 1, type="stock.transfer", data={"new": "shape"})
    rejected(e, "schema_too_new")


def test_a_schema_check_comes_after_the_origin_check() -> None:
    e = event(schemaVersion=SCHEMA_VERSION + 1)
    rejected(e, "origin_mismatch", subject="inv.default.ev.store-002")


# ---------------------------------------------------------------- robustness
def test_check_never_raises_on_hostile_input() -> None:
    base = event("reservation.changed")
    hostile: list[Any] = [
        {**base, "data": {"reservation": {**base["data"]["reservation"], "storeId": None}}},
        {**base, "data": {"reservation": None, "movement": 5}},
        {**base, "data": {"sku": {"$ne": 1}}},
        {**event(), "data": {"sku": "PROD-001", "storeId": "store-001", "kind": ["count"]}},
        {
            **base,
            "data": {"reservation": {**base["data"]["reservation"], "status": ["PENDING"]}},
        },
        {**event(), "hlc": 2**80},
        {**event(), "seq": 2**80, "id": f"store-001:{2**80}"},
        {**event("product.upserted"), "data": {"sku": "PROD-001", "fields": {1: 2}}},
    ]
    for e in hostile:
        result = check(e)
        assert isinstance(result, Rejected), e
        assert result.reason == "malformed", (e, result)


def test_check_does_not_modify_or_keep_the_payload() -> None:
    e = event()
    before = copy.deepcopy(e)
    out = check(e)
    assert e == before
    assert out == before


# ---------------------------------------------------------------------- sort
def test_sort_splits_a_batch_into_events_in_order_and_quarantine_records() -> None:
    from structlog.testing import capture_logs

    first, later = event(), event(id="store-001:9", seq=9)
    skewed = event(id="store-001:8", seq=8, hlc=hlc.pack(NOW + SKEW + 1, 0))
    forged = event(id="store-002:1", origin="store-002", seq=1)
    items = [
        (SUBJECT, json.dumps(first).encode()),
        (SUBJECT, b"\xffnot json"),
        (SUBJECT, json.dumps(skewed).encode()),
        (SUBJECT, json.dumps(forged).encode()),
        (SUBJECT, json.dumps(later).encode()),
    ]
    with capture_logs() as logs:
        events, quarantined = validate.sort(items, NOW, SKEW)
    assert events == [first, later]
    assert [(q["eventId"], q["reason"], q["subject"]) for q in quarantined] == [
        (None, "malformed", SUBJECT),
        ("store-001:8", "clock_skew", SUBJECT),
        ("store-002:1", "origin_mismatch", SUBJECT),
    ]
    assert quarantined[0]["body"] == "\ufffdnot json"  # kept, as text
    assert json.loads(quarantined[1]["body"]) == skewed
    # one warning per record, naming the reason and the subject
    assert [(e["event"], e["log_level"], e["reason"], e["subject"]) for e in logs] == [
        ("event quarantined", "warning", q["reason"], SUBJECT) for q in quarantined
    ]


def test_sort_keeps_at_most_64_kib_of_a_rejected_body() -> None:
    huge = json.dumps({**event(), "data": {"sku": "x" * 200_000}}).encode()
    events, [q] = validate.sort([(SUBJECT, huge)], NOW, SKEW)
    assert events == [] and q["reason"] == "malformed"
    assert len(q["body"]) == 65536 and q["body"] == huge[:65536].decode()


def test_sort_of_nothing_is_nothing() -> None:
    assert validate.sort([], NOW, SKEW) == ([], [])


# ------------------------------------------------- transfers, reorder, alerts
def _changed(path: str, value: Any, type_: str) -> dict[str, Any]:
    """A valid event of ``type_`` with the field at ``path`` (dots; ``-`` removes it) changed."""
    e = event(type_)
    *parents, last = path.split(".")
    node: Any = e["data"]
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value == "-":
        del node[last]
    else:
        node[last] = value
    return e


@pytest.mark.parametrize(
    ("type_", "path", "value"),
    [
        ("transfer.changed", "transfer.toStoreId", "store-001"),  # to itself
        ("transfer.changed", "transfer.toStoreId", "any"),
        ("transfer.changed", "transfer.state", "LOST"),
        ("transfer.changed", "transfer.lines", []),
        ("transfer.changed", "transfer.lines.0.quantity", 0),
        ("transfer.changed", "transfer.lines.0.sku", "bad sku"),
        ("transfer.changed", "transfer.createdAtMs", "-"),
        ("transfer.changed", "claims.0.quantity", -1),
        ("transfer.received", "receipt.lines.0.received", -1),
        ("transfer.received", "receipt.lines", [{"sku": "PROD-001", "received": 0, "damaged": 0}]),
        ("transfer.received", "receipt.transferId", 5),
        ("alert.raised", "alert.kind", "panic"),
        ("alert.raised", "alert.after", "2"),
        ("stock.reorder", "fields", {"reorderQty": 0}),
        ("stock.reorder", "fields", {"minimum": 3}),
    ],
)
def test_a_malformed_transfer_receipt_alert_or_reorder_is_malformed(
    type_: str, path: str, value: Any
) -> None:
    rejected(_changed(path, value, type_), "malformed")


def test_duplicate_skus_and_claims_on_a_shipment_are_malformed() -> None:
    twice = event("transfer.changed")
    twice["data"]["transfer"]["lines"] *= 2
    rejected(twice, "malformed")
    shipped = event("transfer.changed")
    shipped["data"]["transfer"]["state"] = "SHIPPED"  # claims belong to a cancel only
    rejected(shipped, "malformed")


@pytest.mark.parametrize(
    ("type_", "path", "value"),
    [
        ("transfer.changed", "transfer.fromStoreId", "store-003"),
        ("transfer.received", "receipt.toStoreId", "store-003"),
        ("alert.raised", "alert.storeId", "store-003"),
    ],
)
def test_a_side_written_by_another_store_is_not_the_owners(
    type_: str, path: str, value: Any
) -> None:
    rejected(_changed(path, value, type_), "not_owner")


@pytest.mark.parametrize("kind", ["transfer_out", "transfer_in", "transfer_return", "damaged"])
def test_a_plain_stock_movement_may_not_claim_a_transfers_kind(kind: str) -> None:
    e = event()
    e["data"]["kind"] = kind
    rejected(e, "malformed")


# ------------------------------------------------------------------ batches
def _batch_with(i: int, key: str, value: Any) -> dict[str, Any]:
    e = event("stock.batch")
    e["data"]["movements"][i][key] = value
    return e


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("sku", "bad sku"),
        ("storeId", ""),
        ("kind", "transfer_in"),
        ("kind", "steal"),
        ("quantity", "5"),
        ("quantity", 10**10),
        ("reason", 7),
        ("actor", ["x"]),
        ("basis", {"store-002": "4"}),
    ],
)
def test_one_bad_row_makes_the_whole_batch_malformed(key: str, value: Any) -> None:
    """Checked like a stock.movement's data, each of them; the detail names the row."""
    result = rejected(_batch_with(2, key, value), "malformed")
    assert "movement 2" in result.detail


def test_a_batch_count_cannot_be_negative_but_a_delta_can() -> None:
    rejected(_batch_with(0, "quantity", -1), "malformed")
    e = _batch_with(1, "quantity", -1)
    assert check(e) == e


@pytest.mark.parametrize(
    "movements",
    [None, {}, [], "x", [1], [[]]],
)
def test_a_batch_without_a_list_of_movements_is_malformed(movements: Any) -> None:
    rejected(event("stock.batch", data={"movements": movements}), "malformed")


def test_a_batch_moves_each_row_once_and_is_bounded() -> None:
    e = event("stock.batch")
    e["data"]["movements"].append(dict(e["data"]["movements"][1], kind="adjust", quantity=-1))
    assert "a second time" in rejected(e, "malformed").detail
    row = {"sku": "P", "kind": "receive", "quantity": 1}
    many = [{**row, "storeId": f"s{i}"} for i in range(MAX_BATCH_ROWS)]
    e = event("stock.batch", data={"movements": many})
    assert check(e) == e
    e["data"]["movements"].append({**row, "storeId": "one-more"})
    assert str(MAX_BATCH_ROWS) in rejected(e, "malformed").detail


def test_an_agent_of_schema_three_holds_a_batch_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """The release before batches: schema_too_new, applied after its upgrade."""
    monkeypatch.setattr(validate, "SCHEMA_VERSION", 3)
    assert "upgrade" in rejected(event("stock.batch"), "schema_too_new").detail
    assert check(event("stock.movement")) == event("stock.movement")
