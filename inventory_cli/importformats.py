"""Reading import files (CSV, JSON, YAML) into records that remember the
line they start on (``importfile`` turns them into rows)."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FORMATS = ("csv", "json", "yaml")


class ImportFileError(Exception):
    """The file can't be read at all (format, encoding, shape)."""


def detect_format(path: Path, given: str | None) -> str:
    if given:
        if given not in FORMATS:
            raise ImportFileError(f"--format must be one of {', '.join(FORMATS)}")
        return given
    ext = path.suffix.lower().lstrip(".")
    fmt = {"yml": "yaml", "jsonl": "json"}.get(ext, ext)
    if fmt not in FORMATS:
        raise ImportFileError(
            f"can't tell the format of {path.name} from its extension; use --format csv|json|yaml"
        )
    return fmt


def read_records(path: Path, fmt: str) -> list[tuple[int, dict[str, Any]]]:
    text = read_text(path)
    if fmt == "csv":
        return _read_csv(text)
    if fmt == "json":
        return _read_json(text)
    return _read_yaml(text)


def read_bytes(path: Path) -> bytes:
    """The file as it is (a CSV import sends it so), or what stops reading it."""
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise ImportFileError(f"file not found: {path}") from exc
    except OSError as exc:
        raise ImportFileError(f"can't read {path}: {exc}") from exc


def decode(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFileError(f"{path.name} is not UTF-8 text: {exc}") from exc


def read_text(path: Path) -> str:
    return decode(path, read_bytes(path))


def csv_records(text: str) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """A CSV file's column names, and its records as they are read: the line
    each ends on, and its values (not stripped; blank lines too)."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise ImportFileError(f"line {reader.line_num}: {exc}") from exc
    if not header:
        raise ImportFileError("the CSV file is empty: expected a header line")
    names = [name.strip() for name in header]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ImportFileError(f"line 1: column {twice[0]!r} appears twice in the header")

    def records() -> Iterator[tuple[int, list[str]]]:
        try:
            for values in reader:
                if len(values) > len(names):
                    raise ImportFileError(
                        f"line {reader.line_num}: more values than header columns"
                    )
                yield reader.line_num, values
        except csv.Error as exc:
            raise ImportFileError(f"line {reader.line_num}: {exc}") from exc

    return names, records()


def record_start(end: int, values: list[str]) -> int:
    """The line a record starts on: ``end`` less the line breaks in its quoted values."""
    return end - sum(v.count("\n") for v in values)


def record_cells(names: list[str], values: list[str]) -> dict[str, Any] | None:
    """A record as named cells, stripped (a short row's missing ones None);
    None for a blank line."""
    cells: list[str | None] = [v.strip() for v in values]
    if not any(cells):
        return None
    if len(cells) < len(names):
        cells += [None] * (len(names) - len(cells))
    return dict(zip(names, cells, strict=True))


def _read_csv(text: str) -> list[tuple[int, dict[str, Any]]]:
    names, records = csv_records(text)
    out = []
    for end, values in records:
        cells = record_cells(names, values)
        if cells is not None:
            out.append((record_start(end, values), cells))
    return out


def _read_json(text: str) -> list[tuple[int, dict[str, Any]]]:
    """A JSON array of objects (or {"rows": [...]}); each row keeps the line
    it starts on, found by decoding the array one element at a time."""
    if not text.strip():
        raise ImportFileError("the JSON file is empty: expected an array of rows")
    try:
        data = json.loads(text)  # the whole document, so trailing junk is an error too
    except json.JSONDecodeError as exc:
        raise ImportFileError(f"line {exc.lineno}: invalid JSON: {exc.msg}") from exc
    except ValueError as exc:  # a number of more than 4300 digits
        raise ImportFileError(f"invalid JSON: {exc}") from exc
    except RecursionError as exc:
        raise ImportFileError("invalid JSON: nested too deeply") from exc
    decoder = json.JSONDecoder()
    if isinstance(data, list):
        pos = _skip(_WS, text, 0)
    elif isinstance(data, dict) and isinstance(data.get("rows"), list):
        pos = _rows_position(text, decoder)
    else:
        raise ImportFileError('expected a JSON array of rows, or {"rows": [...]}')
    rows = data if isinstance(data, list) else data["rows"]
    out = []
    line, counted = 1, 0
    pos += 1  # past "["
    for row in rows:
        pos = _skip(_SEP, text, pos)
        line += text.count("\n", counted, pos)
        counted = pos
        out.append((line, row))
        pos = decoder.raw_decode(text, pos)[1]
    return out


_WS = re.compile(r"\s*")
_SEP = re.compile(r"[\s,]*")


def _skip(pattern: re.Pattern[str], text: str, pos: int) -> int:
    """Where a run of ``pattern`` (it matches the empty string too) from ``pos`` ends."""
    found = pattern.match(text, pos)
    return found.end() if found else pos


def _rows_position(text: str, decoder: json.JSONDecoder) -> int:
    """Where the (last, as json.loads keeps the last) "rows" array of a valid
    top-level JSON object starts."""
    pos = _skip(_WS, text, 0) + 1
    found = -1
    while True:
        pos = _skip(_SEP, text, pos)
        if text[pos] == "}":
            return found
        key, pos = decoder.raw_decode(text, pos)
        pos = _skip(_WS, text, pos) + 1  # past ":"
        pos = _skip(_WS, text, pos)
        if key == "rows":
            found = pos
        pos = decoder.raw_decode(text, pos)[1]


def _read_yaml(text: str) -> list[tuple[int, dict[str, Any]]]:
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ImportFileError(f"invalid YAML: {exc}") from exc
    except RecursionError as exc:
        raise ImportFileError("invalid YAML: nested too deeply") from exc
    if node is None:
        return []
    if isinstance(node, yaml.MappingNode):
        rows = [v for k, v in node.value if getattr(k, "value", None) == "rows"]
        if not rows:
            raise ImportFileError("expected a YAML list of rows, or rows: [...]")
        node = rows[0]
    if not isinstance(node, yaml.SequenceNode):
        raise ImportFileError("expected a YAML list of rows")

    class Loader(yaml.SafeLoader):
        def construct_yaml_int(self, node: Any) -> int:
            value: int = super().construct_yaml_int(node)
            str(value)  # 0x + 5000 digits: ValueError now, not where a row prints it
            return value

    Loader.add_constructor("tag:yaml.org,2002:int", Loader.construct_yaml_int)
    loader = Loader("")
    out = []
    for item in node.value:
        line = item.start_mark.line + 1
        try:
            out.append((line, loader.construct_document(item)))
        # a tag the safe loader refuses, or a tagged value it can't convert
        # (!!int abc, !!bool maybe, !!timestamp 2020-13-45...)
        except (yaml.YAMLError, ValueError, TypeError, KeyError, RecursionError) as exc:
            problem = getattr(exc, "problem", None) or (str(exc).splitlines() or ["?"])[0]
            if isinstance(exc, KeyError):  # !!bool maybe
                problem = f"{exc.args[0]!r} is not a value its tag allows"
            raise ImportFileError(f"line {line}: invalid YAML value: {problem}") from exc
    return out
