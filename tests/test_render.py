"""The one-line conflict explanations of ``inv conflicts`` (the table form)."""

from __future__ import annotations

from inventory_cli.render_conflicts import conflict_detail


def test_each_conflict_kind_reads_as_one_line() -> None:
    assert (
        conflict_detail(
            {"kind": "product_field", "detail": {"field": "price", "kept": 84.99, "lost": 79.99}}
        )
        == "price: kept 84.99, lost 79.99"
    )
    assert conflict_detail({"kind": "superseded_delta", "detail": {"delta": -5, "count": 40}}) == (
        "delta -5 made before count 40 it did not know"
    )
    assert conflict_detail({"kind": "concurrent_count", "detail": {"kept": 7, "lost": 9}}) == (
        "count 9 lost to a later count 7"
    )
    assert (
        conflict_detail({"kind": "negative_available", "detail": {"onHand": 1, "reserved": 3}})
        == "on hand 1, reserved 3"
    )
    assert conflict_detail({"kind": "other", "detail": {"a": 1}}) == "a=1"


def test_directory_conflicts_read_like_product_fields() -> None:
    field = {"field": "priority", "kept": 1, "lost": 5}
    assert conflict_detail({"kind": "store_field", "detail": field}) == "priority: kept 1, lost 5"
    setting = {"field": "safetyStock", "kept": 2, "lost": None}
    assert conflict_detail({"kind": "stock_setting", "detail": setting}) == (
        "safetyStock: kept 2, lost None"
    )


def test_a_cancel_that_lost_to_a_receipt_says_what_it_returns() -> None:
    detail = {"transferId": "T-1", "field": "P", "shipped": 5, "claimed": 5, "cancelled": 1}
    detail |= {"received": 3, "damaged": 1}
    assert conflict_detail({"kind": "cancel_vs_receipt", "detail": detail}) == (
        "transfer T-1: its cancel took back 5, but 4 of 5 arrived: it returns 1"
    )
