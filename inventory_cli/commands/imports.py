"""``inv import`` (stock levels) and ``inv product import`` (the catalogue):
the file is read and checked here, row by row, before anything is sent."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import typer

from inventory_cli import render, render_imports
from inventory_cli.commands.options import DryRun, Force, Format, Json, Wide
from inventory_cli.context import client
from inventory_cli.errors import CliError, UsageError

MAX_SHOWN = 50  # row errors printed; the rest are counted
Parse = Callable[[list[tuple[int, Any]]], tuple[list[dict[str, Any]], list[Any]]]


def _read_rows(file: Path, fmt: str | None, parse: Parse) -> list[dict[str, Any]]:
    from inventory_cli import importfile

    try:
        records = importfile.read_records(file, importfile.detect_format(file, fmt))
    except importfile.ImportFileError as exc:
        raise UsageError(f"{file}: {exc}") from exc
    rows, errors = parse(records)
    if errors:
        for e in errors[:MAX_SHOWN]:
            render.message(f"{file}: {e}")
        if len(errors) > MAX_SHOWN:
            render.message(f"... and {len(errors) - MAX_SHOWN} more")
        raise UsageError(f"{len(errors)} invalid row(s) in {file}; nothing was imported")
    if not rows:
        raise UsageError(f"{file} has no rows to import")
    return rows


def _progress(rows: int) -> Any:
    """A spinner on stderr for a long import in a terminal (else None)."""
    if rows < 5000 or not sys.stderr.isatty():
        return None
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=render.err(),
        transient=True,
    )
    progress.start()
    progress.add_task(f"importing {rows} rows", total=None)
    return progress


def _send(
    ctx: typer.Context, path: str, rows: list[dict[str, Any]], dry_run: bool, force: bool
) -> Any:
    body = {"rows": rows, "dryRun": dry_run, "force": force}
    unknown = "the import may have been applied: run the same command again to check " + (
        "(a re-import applies nothing)"
        if not force
        else "without --force (a re-import then applies nothing; with --force, twice)"
    )
    if dry_run:
        unknown = "a dry run applies nothing: run it again"
    progress = _progress(len(rows))
    try:
        # never sent again by the client (see AgentClient): the user re-runs it
        return client(ctx).request("POST", path, body=body, timeout=600.0, unknown=unknown)
    except CliError as exc:
        for e in exc.body.get("errors", [])[:MAX_SHOWN]:
            where = f"line {e['line']}" if "line" in e else ""
            render.message(f"{where}: {e.get('field')}: {e.get('error')}".lstrip(": "))
        raise
    finally:
        if progress is not None:
            progress.stop()


def import_stock(
    ctx: typer.Context,
    file: Path,
    fmt: Format = None,
    dry_run: DryRun = False,
    force: Force = False,
    wide: Wide = False,
    as_json: Json = False,
) -> None:
    """Import stock levels from CSV, JSON or YAML (columns: sku, storeId, quantity,
    mode set|add, reason; safetyStock, reorderPoint, maxStock, reorderQty). All
    rows or none; re-importing the same file is a no-op."""
    from inventory_cli import importfile

    rows = _read_rows(file, fmt, importfile.stock_rows)
    result = _send(ctx, "/api/v1/imports/stock", rows, dry_run, force)
    render.emit(result, as_json, partial(render_imports.import_result, what="rows", wide=wide))


def import_products(
    ctx: typer.Context,
    file: Path,
    fmt: Format = None,
    dry_run: DryRun = False,
    force: Force = False,
    wide: Wide = False,
    as_json: Json = False,
) -> None:
    """Import the catalogue from CSV, JSON or YAML (columns: sku, id, name,
    description, category, price, active). All rows or none."""
    from inventory_cli import importfile

    rows = _read_rows(file, fmt, importfile.product_rows)
    result = _send(ctx, "/api/v1/imports/products", rows, dry_run, force)
    render.emit(result, as_json, partial(render_imports.import_result, what="products", wide=wide))
