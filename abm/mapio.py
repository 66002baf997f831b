"""Bring your own system map: read and write stakeholder networks.

Formats (`FORMATS`), read by `read_map` and written by `write_map`:

- `graphml`: GraphML, as Gephi, PRSM, yEd and networkx write it (`.graphml`);
- `gexf`: GEXF 1.1-1.3, as Gephi, PRSM and networkx write it (`.gexf`);
- `csv`: a directory holding `nodes.csv` (`Id`, `Label`, ...) and `edges.csv` (`Source`, `Target`,
  ...), Gephi's spreadsheet layout;
- `edgelist`: one CSV of ties (`Source`/`From`, `Target`/`To`, ...); people are the names in it;
- `kumu-xlsx`, `kumu-csv`, `kumu-json`: Kumu's layout, as an `.xlsx` workbook (sheets `Elements`,
  `Connections`), a directory holding `elements.csv` and `connections.csv`, or a JSON blueprint
  or project export (`.json`);
- `prsm-xlsx`: PRSM's Excel workbook (sheets `Factors`, `Links`).

A map read by `read_map` is a networkx graph in *canonical form*: node ids are strings; the
columns or attributes that the model reads are renamed to `label`, `role`, `ward`,
`organisation`, `community` (nodes) and `trust` (ties), case-insensitively (Kumu's `Type` is the
role; `weight` and `Strength` are trust; `network.mapping.columns` renames others); everything
else is kept under its own name. `resolve_map` turns that graph into the model's codes (roles,
wards, organisations, ties with trust), and `abm.network.population_from_graph` builds the
population. Problems with a file raise `MapError` (a `ConfigError`): one line naming the file,
the row or element, and the problem. Things the model fixes up (people with no role, directed
links, self-loops, ...) are reported as `MapWarning`s, one line each.

XML is parsed with defusedxml, refusing any DTD (so no entity expansion and no external
entities), before networkx reads it; Excel workbooks are read with openpyxl, which uses defusedxml
too, after checking how far the archive unpacks. See docs/maps.md.

Example:
    >>> import tempfile, networkx as nx
    >>> g = nx.Graph([("a", "b", {"trust": 0.5})])
    >>> nx.set_node_attributes(g, {"a": "gp", "b": "resident"}, "role")
    >>> path = write_map(g, Path(tempfile.mkdtemp()) / "map.graphml")
    >>> h = read_map(path)
    >>> h.nodes["a"]["role"], h.edges["a", "b"]["trust"]
    ('gp', 0.5)
"""

from __future__ import annotations

import contextlib
import csv
import difflib
import hashlib
import io
import json
import math
import os
import re
import shutil
import stat
import warnings
import zipfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.etree.ElementTree import Element, ParseError

import networkx as nx
import numpy as np
import pandas as pd

from abm.config import MAX_AGENTS, Config, ConfigError, MapMappingSpec, ScenarioWarning
from abm.io import format_bytes

if TYPE_CHECKING:
    from abm.model import CommonPurposeModel

#: Every format `read_map` reads and `write_map` writes.
FORMATS = ("graphml", "gexf", "csv", "edgelist", "kumu-xlsx", "kumu-csv", "kumu-json", "prsm-xlsx")
#: Formats written as a directory of CSV files rather than one file.
DIRECTORY_FORMATS = ("csv", "kumu-csv")
#: What `read_map` can be given, for messages that say what is allowed.
MAP_FILES = (
    ".graphml, .gexf, .xml (GraphML or GEXF), .json (Kumu), .xlsx (Kumu or PRSM), .csv (an edge list), "
    "or a directory of CSV files (nodes.csv and edges.csv, or Kumu's elements.csv and connections.csv)"
)
#: Suffixes of scenario files: a common slip is to give one where a map is wanted.
CONFIG_SUFFIXES = (".yaml", ".yml")
#: File suffix -> format, for reading and for `abm network export --out` without `--format`.
SUFFIX_FORMATS = {".graphml": "graphml", ".gexf": "gexf", ".json": "kumu-json", ".xlsx": "kumu-xlsx"}
#: Candidate column or attribute names (lower case, in order of preference) of each model field.
NODE_FIELDS = {
    "label": ("label", "name"),
    "role": ("role", "type", "element type"),
    "ward": ("ward",),
    "organisation": ("organisation", "organization", "org"),
    "community": ("community",),
}
EDGE_FIELDS = {"trust": ("trust", "weight", "strength")}
#: An .xlsx may unpack to at most this many times the size limit.
XLSX_UNPACK_FACTOR = 5
#: How many example labels a warning or error lists.
EXAMPLES = 3

_SPACES = re.compile(r"[\s\-]+")
_INSTANCE = re.compile(r"_\d+$")


class MapError(ConfigError):
    """A map file that cannot be used: one line naming the file, the row or element, and the problem."""


class MapWarning(ScenarioWarning):
    """Something in a map the model fixed up (one line): defaults used, directed links, self-loops, ..."""


def _warn(message: str) -> None:
    """Warn once, pointing at the first caller outside this package."""
    warnings.warn(MapWarning(message), skip_file_prefixes=(os.path.dirname(__file__),))


def norm(text: object) -> str:
    """A label for matching: lower case, trimmed, spaces and hyphens as underscores."""
    return _SPACES.sub("_", str(text).strip().lower())


def _text(value: Any) -> str | None:
    """A cell or attribute as trimmed text (None when blank; 3.0 -> '3'; lists joined with '|')."""
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
    if isinstance(value, (list, tuple)):
        return "|".join(t for t in (_text(v) for v in value) if t) or None
    if isinstance(value, np.generic):
        return _text(value.item())
    text = str(value).strip()
    return text or None


def _scalar(value: Any) -> Any:
    """An attribute value every format can hold: str, int, float or bool (None when blank)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return _text(value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    text = str(value)
    return text if text.strip() else None


def _examples(values: Iterable[str]) -> str:
    items = list(dict.fromkeys(values))
    shown = ", ".join(f"'{v}'" for v in items[:EXAMPLES])
    return shown + (f" and {len(items) - EXAMPLES} more" if len(items) > EXAMPLES else "")


def _plural(k: int, one: str, many: str | None = None) -> str:
    return f"{k:,} {one if k == 1 else (many or one + 's')}"


def _over(size: int, limit: int) -> tuple[str, str]:
    """A size and the limit it exceeds, for people: '21.6 KB' and '1.0 KB'.

    Exact byte counts when the rounded sizes would read the same ('100.0 KB, more than the
    100.0 KB allowed' says nothing).
    """
    shown, allowed = format_bytes(size), format_bytes(limit)
    if shown == allowed:
        return f"{size:,} bytes", f"{limit:,} bytes"
    return shown, allowed


# --- reading files -----------------------------------------------------------------------------


def detect_format(path: str | Path) -> str:
    """The format of a map file or directory, from its suffix, sheet names or file names.

    Raises:
        MapError: the file does not exist or its format is not recognised.
    """
    p = Path(path)
    if not p.exists():
        raise MapError(f"{path}: file not found")
    if p.is_dir():
        names = {f.name.lower() for f in p.iterdir() if f.is_file()}
        if {"nodes.csv", "edges.csv"} <= names:
            return "csv"
        if {"elements.csv", "connections.csv"} <= names:
            return "kumu-csv"
        raise MapError(
            f"{path}: a directory must hold nodes.csv and edges.csv, or Kumu's elements.csv and connections.csv"
        )
    suffix = p.suffix.lower()
    if suffix in (".graphml", ".gexf", ".json"):
        return SUFFIX_FORMATS[suffix]
    if suffix == ".xml":
        with p.open("rb") as fh:
            head = fh.read(4096).lower()
        if b"<graphml" in head:
            return "graphml"
        if b"<gexf" in head:
            return "gexf"
        raise MapError(f"{path}: an .xml file must be GraphML or GEXF (no <graphml> or <gexf> at its start)")
    if suffix in (".xlsx", ".xlsm"):
        return "xlsx"  # Kumu or PRSM: decided from the sheet names once the workbook is open
    if suffix == ".csv":
        return "edgelist"
    if suffix == ".xls":
        raise MapError(f"{path}: old .xls workbooks are not read; save it as .xlsx")
    if suffix in CONFIG_SUFFIXES:
        raise MapError(
            f"{path}: unknown map format '{suffix}': a {suffix} file is a scenario config, not a map "
            f"(a map is {MAP_FILES})"
        )
    raise MapError(f"{path}: unknown map format '{suffix or p.name}' (expected {MAP_FILES})")


def _read_bytes(path: Path, max_bytes: int, label: str | Path | None = None) -> bytes:
    """The whole file, refused before reading if it is over the size limit."""
    label = label or path
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):  # opening a pipe or a device would wait (or read) forever
        raise MapError(f"{label}: is not a regular file (a pipe or a device), not a map file")
    size = info.st_size
    if size > max_bytes:
        shown, allowed = _over(size, max_bytes)
        raise MapError(
            f"{label}: the file is {shown}, more than the {allowed} allowed "
            f"(network.source_max_mb = {max_bytes / 1e6:g})"
        )
    with path.open("rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:  # it grew while we looked
        raise MapError(
            f"{label}: the file is more than the {format_bytes(max_bytes)} allowed "
            f"(network.source_max_mb = {max_bytes / 1e6:g})"
        )
    return data


def read_map(
    path: str | Path,
    mapping: MapMappingSpec | None = None,
    *,
    max_mb: float = 50.0,
    fmt: str | None = None,
) -> nx.Graph:
    """Read a map file into a networkx graph in canonical form (see the module docstring).

    The graph is directed, or a multigraph, when the file is; self-loops are kept. Those are
    dealt with (with warnings) when the population is built. `graph.graph` holds `source` (the
    path), `format`, `where` (node id -> row or element, for messages), `trust_column`, and
    `sha256` and `bytes` of the file(s).

    Args:
        path: a file, or a directory for the `csv` and `kumu-csv` formats.
        mapping: `network.mapping` from the config (column names); default: none.
        max_mb: largest file accepted, in megabytes (a directory: its two files together).
        fmt: one of `FORMATS`; default: from the suffix, sheet or file names.

    Raises:
        MapError: the file is missing, too large, malformed, or its content is unusable.
    """
    mapping = mapping or MapMappingSpec()
    p = Path(path)
    fmt = fmt or detect_format(p)
    if fmt not in (*FORMATS, "xlsx"):
        raise MapError(f"{path}: unknown map format '{fmt}' (one of {', '.join(FORMATS)})")
    if not p.exists():
        raise MapError(f"{path}: file not found")
    max_bytes = int(max_mb * 1e6)
    if fmt in DIRECTORY_FORMATS:
        graph, digest, size = _read_directory(p, fmt, mapping, max_bytes)
    else:
        if p.is_dir():
            raise MapError(f"{path}: is a directory; the {fmt} format is one file")
        data = _read_bytes(p, max_bytes)
        digest, size = hashlib.sha256(data).hexdigest(), len(data)
        if fmt in ("graphml", "gexf"):
            graph = _read_xml(str(path), data, fmt, mapping)
        elif fmt == "kumu-json":
            nodes, edges = _json_tables(str(path), data)
            graph = _graph_from_tables(str(path), nodes, edges, "kumu", mapping)
        elif fmt in ("xlsx", "kumu-xlsx", "prsm-xlsx"):
            graph, fmt = _read_xlsx(str(path), data, fmt, mapping, max_bytes)
        else:
            table = _csv_table(str(path), p.name, data)
            graph = _graph_from_tables(str(path), None, table, "csv", mapping)
    graph.graph.update(format=fmt, sha256=digest, bytes=size)
    if graph.number_of_nodes() == 0:
        raise MapError(f"{path}: the map is empty (no people, that is no nodes or elements)")
    if graph.number_of_nodes() > MAX_AGENTS:
        raise MapError(f"{path}: {graph.number_of_nodes():,} people, more than the {MAX_AGENTS:,} the model allows")
    return graph


def _read_directory(p: Path, fmt: str, mapping: MapMappingSpec, max_bytes: int) -> tuple[nx.Graph, str, int]:
    files = {f.name.lower(): f for f in p.iterdir() if f.is_file()}
    names = ("nodes.csv", "edges.csv") if fmt == "csv" else ("elements.csv", "connections.csv")
    missing = [n for n in names if n not in files]
    if missing:
        raise MapError(f"{p}: the {fmt} format needs {' and '.join(names)} in the directory (missing {missing[0]})")
    total = sum(files[n].stat().st_size for n in names)
    if total > max_bytes:
        shown, allowed = _over(total, max_bytes)
        raise MapError(
            f"{p}: the files are {shown} together, more than the {allowed} allowed "
            f"(network.source_max_mb = {max_bytes / 1e6:g})"
        )
    blobs = [_read_bytes(files[n], max_bytes, files[n]) for n in names]
    h = hashlib.sha256()
    for blob in blobs:
        h.update(hashlib.sha256(blob).digest())
    nodes = _csv_table(str(p), files[names[0]].name, blobs[0])
    edges = _csv_table(str(p), files[names[1]].name, blobs[1])
    style = "csv" if fmt == "csv" else "kumu"
    return _graph_from_tables(str(p), nodes, edges, style, mapping), h.hexdigest(), sum(map(len, blobs))


# --- XML (GraphML, GEXF) ---------------------------------------------------------------------------


def _local(tag: object) -> str:
    return str(tag).rsplit("}", 1)[-1]


def safe_xml(source: str, data: bytes) -> Element:
    """Parse XML with defusedxml, refusing DTDs, entities and external references.

    Raises:
        MapError: malformed XML, or XML that declares a DTD or entities.
    """
    try:
        import defusedxml
        from defusedxml import ElementTree as SafeET
    except ImportError:  # pragma: no cover - a dependency
        raise MapError(f"{source}: reading XML maps needs the defusedxml package (pip install defusedxml)") from None
    try:
        return SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DTDForbidden:
        raise MapError(
            f"{source}: refused: the XML declares a DTD (<!DOCTYPE ...>); map files may not declare DTDs or "
            "entities, which blocks entity-expansion ('billion laughs') and external-entity attacks"
        ) from None
    except defusedxml.EntitiesForbidden as exc:
        raise MapError(
            f"{source}: refused: the XML declares entity '{exc.name}'; map files may not declare entities "
            "(entity-expansion attack)"
        ) from None
    except defusedxml.DefusedXmlException as exc:
        raise MapError(f"{source}: refused: unsafe XML ({type(exc).__name__})") from None
    except ParseError as exc:
        line, col = getattr(exc, "position", (0, 0))
        reason = str(exc).split(":")[0]
        raise MapError(f"{source}: not well-formed XML at line {line}, column {col + 1} ({reason})") from None


def _check_xml(source: str, root: Element, fmt: str) -> None:
    """Structure checks networkx does not make: a graph, ids present and unique, ties to known nodes."""
    if _local(root.tag) != fmt:
        raise MapError(f"{source}: the root element is <{_local(root.tag)}>, not <{fmt}>")
    graph = next((el for el in root if _local(el.tag) == "graph"), None)
    if graph is None:
        raise MapError(f"{source}: no <graph> element in the {fmt.upper()} file")
    ids: dict[str, int] = {}
    nodes = edges = 0
    for el in graph.iter():
        tag = _local(el.tag)
        if tag == "node":
            nodes += 1
            nid = el.get("id")
            if nid is None:
                raise MapError(f"{source}: <node> number {nodes} has no id attribute")
            if nid in ids:
                raise MapError(f"{source}: <node id='{nid}'>: duplicate id (node number {ids[nid]} has it too)")
            ids[nid] = nodes
    for el in graph.iter():
        if _local(el.tag) != "edge":
            continue
        edges += 1
        for end in ("source", "target"):
            ref = el.get(end)
            if ref is None:
                raise MapError(f"{source}: <edge> number {edges} has no {end} attribute")
            if ref not in ids:
                raise MapError(
                    f"{source}: <edge> number {edges} ({el.get('source')} -> {el.get('target')}): "
                    f"{end} '{ref}' is not a node in the file"
                )


def _read_xml(source: str, data: bytes, fmt: str, mapping: MapMappingSpec) -> nx.Graph:
    root = safe_xml(source, data)
    _check_xml(source, root, fmt)
    if fmt == "graphml" and not root.tag.startswith("{"):
        # GraphML without its namespace: networkx adds it by a text replace, which needs text
        with contextlib.suppress(UnicodeDecodeError):
            data = data.decode("utf-8")  # type: ignore[assignment]
    try:  # no DTD, so the standard parser networkx uses cannot expand entities
        g = nx.parse_graphml(data) if fmt == "graphml" else nx.read_gexf(io.BytesIO(data))
    except Exception as exc:
        raise MapError(f"{source}: not a readable {fmt.upper()} file: {' '.join(str(exc).split())}") from None
    for *_, d in g.edges(data=True):
        d.pop("id", None)  # edge ids mean nothing to the model
        d.pop("viz", None)
    for _, d in g.nodes(data=True):
        d.pop("viz", None)  # GEXF layout: colour, size, position
    return canonical_graph(g, mapping, source=source, where={n: f"<node id='{n}'>" for n in g})


# --- tables (CSV, Excel, JSON) ----------------------------------------------------------------------


@dataclass
class _Table:
    """Rows of a sheet, CSV file or JSON list: a header and (where, values) rows."""

    name: str
    header: list[str]
    rows: list[tuple[str, list[Any]]] = field(default_factory=list)
    typed: bool = True  # False: every value is text (CSV), converted per column

    def find(self, names: Iterable[str]) -> int | None:
        lower = [h.strip().lower() for h in self.header]
        for name in names:
            if name.strip().lower() in lower:
                return lower.index(name.strip().lower())
        return None


def _check_header(source: str, name: str, header: list[str]) -> list[str]:
    while header and not header[-1]:
        header = header[:-1]
    seen: dict[str, int] = {}
    for i, h in enumerate(header):
        if not h:
            raise MapError(f"{_at(source, name)}: column {i + 1} has no name in the header row")
        if h.lower() in seen:
            raise MapError(f"{_at(source, name)}: column '{h}' appears twice in the header row")
        seen[h.lower()] = i
    return header


def _at(source: str, name: str) -> str:
    """Where a table's problem is: the file, and the table's name only when it is a part of it."""
    return source if Path(source).name == name else f"{source}: {name}"


def _csv_table(source: str, name: str, data: bytes) -> _Table:
    if b"\x00" in data:
        raise MapError(f"{_at(source, name)}: is a binary file, not CSV")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MapError(f"{_at(source, name)}: not UTF-8 text (byte {exc.start}); save the CSV as UTF-8") from None
    first = text.split("\n", 1)[0]
    delimiter = next((d for d in (",", ";", "\t") if d in first), ",")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader, [])]
        header = _check_header(source, name, header)
        if not header:
            raise MapError(f"{_at(source, name)}: no header row (the file is empty)")
        table = _Table(name, header, typed=False)
        for row in reader:
            if not any(c.strip() for c in row):
                continue
            # A short row's missing fields are blank, as are extra blank fields (trailing delimiters, like
            # the header's own blank trailing columns); an extra value would be dropped unseen, so refuse it.
            if any(c.strip() for c in row[len(header) :]):
                raise MapError(
                    f"{source}: {name} row {reader.line_num}: {len(row)} fields, more than the header's "
                    f"{len(header)} ({', '.join(header)}); quote values that contain {delimiter!r}, or remove "
                    "the extra fields"
                )
            cells = [c.strip() for c in row[: len(header)]]
            table.rows.append((f"{name} row {reader.line_num}", cells + [""] * (len(header) - len(cells))))
    except csv.Error as exc:
        raise MapError(f"{source}: {name} row {reader.line_num}: not valid CSV ({exc})") from None
    return table


def _check_xlsx_archive(source: str, data: bytes, max_bytes: int) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            unpacked = sum(info.file_size for info in zf.infolist())
    except zipfile.BadZipFile:
        raise MapError(f"{source}: not a valid .xlsx workbook (not a zip archive)") from None
    limit = XLSX_UNPACK_FACTOR * max_bytes
    if unpacked > limit:
        shown, allowed = _over(unpacked, limit)
        raise MapError(
            f"{source}: the workbook unpacks to {shown}, more than the {allowed} allowed "
            f"({XLSX_UNPACK_FACTOR} x network.source_max_mb = {max_bytes / 1e6:g})"
        )


def _xlsx_tables(source: str, data: bytes, max_bytes: int) -> dict[str, _Table]:
    """Every sheet of a workbook (except those named '(ignore)'), by lower-case name."""
    _check_xlsx_archive(source, data, max_bytes)
    try:
        import openpyxl
    except ImportError:  # pragma: no cover - a dependency
        raise MapError(f"{source}: reading Excel maps needs the openpyxl package (pip install openpyxl)") from None
    if not getattr(openpyxl, "DEFUSEDXML", False):  # pragma: no cover - a dependency
        raise MapError(f"{source}: reading Excel maps safely needs the defusedxml package (pip install defusedxml)")
    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:
        raise MapError(f"{source}: not a readable .xlsx workbook ({type(exc).__name__}: {exc})") from None
    tables: dict[str, _Table] = {}
    try:
        for ws in wb.worksheets:
            if "(ignore)" in ws.title.lower():
                continue
            name = f"sheet '{ws.title}'"
            rows = ws.iter_rows(values_only=True)
            first = next(rows, None) or ()
            header = _check_header(source, name, [_text(c) or "" for c in first])
            table = _Table(name, header)
            for r, row in enumerate(rows, start=2):
                values = list(row[: len(header)])
                if all(_text(v) is None for v in values):
                    continue
                values += [None] * (len(header) - len(values))
                table.rows.append((f"{name} row {r}", values))
            tables[ws.title.strip().lower()] = table
    except MapError:
        raise
    except Exception as exc:
        raise MapError(f"{source}: not a readable .xlsx workbook ({type(exc).__name__}: {exc})") from None
    finally:
        wb.close()
    return tables


def _read_xlsx(source: str, data: bytes, fmt: str, mapping: MapMappingSpec, max_bytes: int) -> tuple[nx.Graph, str]:
    tables = _xlsx_tables(source, data, max_bytes)
    kumu = "elements" in tables or "connections" in tables
    prsm = "factors" in tables or "links" in tables
    if fmt == "xlsx":
        if not (kumu or prsm):
            raise MapError(
                f"{source}: no Kumu sheets (Elements, Connections) or PRSM sheets (Factors, Links) in the workbook "
                f"(it has: {_examples(tables)})"
            )
        fmt = "kumu-xlsx" if kumu else "prsm-xlsx"
    if fmt == "kumu-xlsx":
        names, style = ("elements", "connections"), "kumu"
    else:
        names, style = ("factors", "links"), "prsm"
    if names[0] not in tables:
        raise MapError(f"{source}: no sheet named '{names[0].title()}' (the {fmt} layout needs one)")
    if style == "prsm" and names[1] not in tables:
        raise MapError(f"{source}: no sheet named 'Links' (the prsm-xlsx layout needs one)")
    return _graph_from_tables(source, tables[names[0]], tables.get(names[1]), style, mapping), fmt


def _json_tables(source: str, data: bytes) -> tuple[_Table, _Table | None]:
    """Kumu JSON, either a blueprint (top-level keys) or a project export (`_id`, `attributes`)."""
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise MapError(f"{source}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise MapError(f"{source}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise MapError(f"{source}: JSON nested too deeply") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("elements"), list):
        raise MapError(f'{source}: a Kumu JSON map needs an "elements" list (and usually "connections")')
    connections = doc.get("connections", [])
    if not isinstance(connections, list):
        raise MapError(f'{source}: "connections" must be a list')

    def table(name: str, items: list[Any], id_keys: tuple[str, ...]) -> _Table:
        records = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise MapError(f"{source}: {name}[{i}]: must be an object, not {type(item).__name__}")
            flat = {k: v for k, v in item.items() if k not in ("attributes", *id_keys)}
            attrs = item.get("attributes")
            if isinstance(attrs, dict):
                flat.update(attrs)
            for key in id_keys:  # '_id' from an export, 'id' from a blueprint
                if key in item:
                    flat["id"] = item[key]
                    break
            records.append((f"{name}[{i}]", flat))
        header: dict[str, None] = {}
        for _, rec in records:
            header.update(dict.fromkeys(k for k in rec if k.lower() not in {h.lower() for h in header}))
        cols = list(header)
        lower = {c.lower(): c for c in cols}
        out = _Table(name, cols)
        for where, rec in records:
            values = [None] * len(cols)
            for k, v in rec.items():
                values[cols.index(lower[k.lower()])] = v
            out.rows.append((where, values))
        return out

    nodes = table("elements", doc["elements"], ("_id", "id"))
    edges = table("connections", [_drop_ids(c) for c in connections], ()) if connections else None
    return nodes, edges


def _drop_ids(item: Any) -> Any:
    """A Kumu connection without its own id (it means nothing to the model)."""
    if not isinstance(item, dict):
        return item
    out = {k: v for k, v in item.items() if k not in ("_id", "id")}
    if isinstance(out.get("attributes"), dict):
        out["attributes"] = {k: v for k, v in out["attributes"].items() if k not in ("_id", "id")}
    return out


def _convert_column(values: list[Any]) -> list[Any]:
    """CSV text to numbers or booleans when every non-blank value in the column is one."""
    present = [v for v in values if v not in (None, "")]
    if not present:
        return [None] * len(values)
    for kind in (int, float):
        try:
            converted = [kind(v) if v not in (None, "") else None for v in values]
        except (TypeError, ValueError):
            continue
        if kind is float and any(v is not None and not math.isfinite(v) for v in converted):
            break
        return converted
    if all(str(v).lower() in ("true", "false") for v in present):
        return [None if v in (None, "") else str(v).lower() == "true" for v in values]
    return [None if v in (None, "") else v for v in values]


def _column_names(
    source: str, table: _Table, fields: dict[str, tuple[str, ...]], mapping: MapMappingSpec
) -> dict[int, str]:
    """Column index -> canonical field name, for the columns that feed model fields."""
    out: dict[int, str] = {}
    for fld, candidates in fields.items():
        explicit = mapping.columns.get(fld)  # type: ignore[call-overload]
        i = table.find([explicit] if explicit else candidates)
        if explicit and i is None:
            raise MapError(
                f"{source}: {table.name}: network.mapping.columns.{fld} = '{explicit}': no such column "
                f"(columns: {', '.join(table.header)})"
            )
        if i is not None and i not in out:
            out[i] = fld
    return out


def _require(source: str, table: _Table, names: tuple[str, ...], shown: str) -> int:
    i = table.find(names)
    if i is None:
        raise MapError(
            f"{source}: {table.name}: missing required column {shown} (columns: {', '.join(table.header) or 'none'})"
        )
    return i


def _trust_value(source: str, where: str, column: str, value: Any) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise MapError(f"{source}: {where}: trust '{value}' in column '{column}' is not a number")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise MapError(f"{source}: {where}: trust '{value}' in column '{column}' is not a number") from None
    if not math.isfinite(out):
        raise MapError(f"{source}: {where}: trust '{value}' in column '{column}' is not a finite number")
    return out


def _graph_from_tables(
    source: str, nodes: _Table | None, edges: _Table | None, style: str, mapping: MapMappingSpec
) -> nx.Graph:
    """Build the canonical graph from a nodes table (optional) and an edges table (optional)."""
    explicit = mapping.columns
    node_attrs: dict[str, dict[str, Any]] = {}
    where: dict[str, str] = {}
    by_label: dict[str, list[str]] = {}
    if nodes is not None:
        label_col = nodes.find([explicit["label"]] if "label" in explicit else NODE_FIELDS["label"])
        if "id" in explicit:
            id_col = _require(source, nodes, (explicit["id"],), f"'{explicit['id']}' (network.mapping.columns.id)")
        elif style == "kumu":
            id_col = nodes.find(("id", "_id"))
            _require(source, nodes, ("label",), "'Label'")
        elif style == "prsm":  # PRSM has no ids (links name labels); an ID column, as we write, is used
            id_col = nodes.find(("id",))
            _require(source, nodes, ("label",), "'Label'")
        else:
            id_col = nodes.find(("id",))
            if id_col is None:
                id_col = _require(source, nodes, NODE_FIELDS["label"], "'Id' (or 'Label')")
        names = _column_names(source, nodes, NODE_FIELDS, mapping)
        columns = [list(col) for col in zip(*(v for _, v in nodes.rows), strict=True)] if nodes.rows else []
        if not nodes.typed:
            columns = [col if names.get(j) else _convert_column(col) for j, col in enumerate(columns)]
        for r, (loc, _) in enumerate(nodes.rows):
            nid = _text(columns[id_col][r]) if id_col is not None else None
            if nid is None and label_col is not None:
                nid = _text(columns[label_col][r])
            if nid is None:
                what = "Label" if style in ("kumu", "prsm") else "Id"
                raise MapError(f"{source}: {loc}: no {what} (every person needs one)")
            if nid in node_attrs:
                raise MapError(f"{source}: {loc}: duplicate id '{nid}' (also at {where[nid]})")
            attrs: dict[str, Any] = {}
            for j, col in enumerate(columns):
                if (j == id_col or nodes.header[j].strip().lower() in NODE_FIELDS) and j not in names:
                    continue  # the id, or a column named like a field that another column feeds
                key = names.get(j, nodes.header[j])
                value = _text(col[r]) if j in names else _scalar(col[r])
                if value is not None:
                    attrs[key] = value
            attrs.setdefault("label", nid)
            node_attrs[nid] = attrs
            where[nid] = loc
            by_label.setdefault(norm(attrs["label"]), []).append(nid)

    links: list[tuple[str, str, bool | None, dict[str, Any]]] = []
    trust_column = None
    if edges is not None:
        shown = ("'From'", "'To'") if style in ("kumu", "prsm") else ("'Source' (or 'From')", "'Target' (or 'To')")
        s_col = _require(source, edges, (explicit["source"],) if "source" in explicit else ("source", "from"), shown[0])
        t_col = _require(source, edges, (explicit["target"],) if "target" in explicit else ("target", "to"), shown[1])
        names = _column_names(source, edges, EDGE_FIELDS, mapping)
        trust_idx = next((j for j, f in names.items() if f == "trust"), None)
        trust_column = edges.header[trust_idx] if trust_idx is not None else None
        columns = [list(col) for col in zip(*(v for _, v in edges.rows), strict=True)] if edges.rows else []
        dir_col = edges.find(("direction",))
        if dir_col is None and style == "csv":  # Gephi: Type = Directed / Undirected
            j = edges.find(("type",))
            if (
                j is not None
                and columns
                and all(_text(v) is None or norm(v) in ("directed", "undirected", "mutual") for v in columns[j])
            ):
                dir_col = j
        if not edges.typed:
            skip = {s_col, t_col, dir_col, *names}
            columns = [col if j in skip else _convert_column(col) for j, col in enumerate(columns)]
        for r, (loc, _) in enumerate(edges.rows):
            s, t = _text(columns[s_col][r]), _text(columns[t_col][r])
            if s is None or t is None:
                side = edges.header[s_col if s is None else t_col]
                raise MapError(f"{source}: {loc}: no '{side}' (every tie needs two ends)")
            directed = None
            if dir_col is not None and (d := _text(columns[dir_col][r])) is not None:
                if norm(d) not in ("directed", "undirected", "mutual"):
                    raise MapError(f"{source}: {loc}: direction '{d}' is not directed, undirected or mutual")
                directed = norm(d) == "directed"
            attrs = {}
            for j, col in enumerate(columns):
                if j in (s_col, t_col, dir_col):
                    continue
                if j == trust_idx:
                    value = _trust_value(source, loc, edges.header[j], col[r])
                    if value is not None:
                        attrs["trust"] = value
                elif edges.header[j].strip().lower() in EDGE_FIELDS:
                    continue  # named like a field that another column feeds
                elif (value := _scalar(col[r])) is not None:
                    attrs[edges.header[j]] = value
            targets = [x.strip() for x in t.split("|") if x.strip()] if style == "kumu" else [t]
            for target in targets:
                ends = []
                for ref, side in ((s, edges.header[s_col]), (target, edges.header[t_col])):
                    ends.append(_endpoint(source, loc, side, ref, node_attrs, by_label, nodes, where))
                links.append((ends[0], ends[1], directed, attrs))

    default_directed = style in ("kumu", "prsm")
    is_directed = any(default_directed if d is None else d for *_, d, _ in links)
    seen: set[tuple[str, str]] = set()
    multi = False
    expanded: list[tuple[str, str, dict[str, Any]]] = []
    for u, v, d, attrs in links:
        both = is_directed and not (default_directed if d is None else d)
        for a, b in ((u, v), (v, u)) if both else ((u, v),):
            key = (a, b) if is_directed else (min(a, b), max(a, b))
            multi |= key in seen
            seen.add(key)
            expanded.append((a, b, attrs))
    cls = {(False, False): nx.Graph, (True, False): nx.DiGraph, (False, True): nx.MultiGraph}.get(
        (is_directed, multi), nx.MultiDiGraph
    )
    g = cls()
    g.add_nodes_from(node_attrs.items())
    g.add_edges_from((u, v, dict(a)) for u, v, a in expanded)
    g.graph.update(source=source, where=where, trust_column=trust_column, canonical=True)
    return g


def _endpoint(
    source: str,
    loc: str,
    side: str,
    ref: str,
    node_attrs: dict[str, dict[str, Any]],
    by_label: dict[str, list[str]],
    nodes: _Table | None,
    where: dict[str, str],
) -> str:
    """The node id a tie end refers to: an id, else a unique label; new when there is no nodes table."""
    if ref in node_attrs:
        return ref
    if nodes is None:
        node_attrs[ref] = {"label": ref}
        where[ref] = loc
        return ref
    hits = by_label.get(norm(ref), [])
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise MapError(f"{source}: {loc}: '{side}' = '{ref}' is the label of {len(hits)} people; use their IDs")
    raise MapError(
        f"{source}: {loc}: '{side}' = '{ref}' is not an id or label in {nodes.name} (a tie to an unknown node)"
    )


# --- canonical form ---------------------------------------------------------------------------------


def _field_names(
    source: str, keys: Iterable[Any], fields: dict[str, tuple[str, ...]], mapping: MapMappingSpec
) -> dict[str, tuple[str, ...]]:
    """Field -> lower-case attribute names to look for, checking that named mapping columns exist."""
    present = {str(k).strip().lower() for k in keys}
    out: dict[str, tuple[str, ...]] = {}
    for fld, candidates in fields.items():
        explicit = mapping.columns.get(fld)  # type: ignore[call-overload]
        if explicit and explicit.strip().lower() not in present:
            raise MapError(
                f"{source}: network.mapping.columns.{fld} = '{explicit}': no such attribute in the map "
                f"(it has: {_examples(sorted(map(str, keys))) or 'none'})"
            )
        out[fld] = (explicit.strip().lower(),) if explicit else candidates
    return out


def _pick(d: dict[Any, Any], names: dict[str, tuple[str, ...]]) -> dict[Any, str]:
    """One element's attributes that feed model fields: original key -> field (case-insensitive)."""
    lower: dict[str, Any] = {}
    for k in d:
        lower.setdefault(str(k).strip().lower(), k)
    used: dict[Any, str] = {}
    for fld, candidates in names.items():
        for name in candidates:
            k = lower.get(name)
            if k is not None and k not in used:
                used[k] = fld
                break
    return used


def _canonical_attrs(d: dict[Any, Any], used: dict[Any, str], fields: Iterable[str]) -> dict[str, Any]:
    """Attributes other than those feeding fields, and other than any named like a field (not read)."""
    names = set(fields)
    out = {str(k): _scalar(v) for k, v in d.items() if k not in used and str(k).strip().lower() not in names}
    return {k: v for k, v in out.items() if v is not None}


def canonical_graph(
    graph: nx.Graph,
    mapping: MapMappingSpec | None = None,
    *,
    source: str | None = None,
    where: dict[Any, str] | None = None,
) -> nx.Graph:
    """A copy of any networkx graph in canonical form: string ids, model fields renamed.

    Graphs already in canonical form (from `read_map`) are returned as they are.

    Raises:
        MapError: two nodes with the same id as text, or a trust that is not a number.
    """
    if graph.graph.get("canonical"):
        return graph
    mapping = mapping or MapMappingSpec()
    source = source or str(graph.graph.get("source") or "graph")
    node_names = _field_names(source, {k for _, d in graph.nodes(data=True) for k in d}, NODE_FIELDS, mapping)
    edge_names = _field_names(source, {k for *_, d in graph.edges(data=True) for k in d}, EDGE_FIELDS, mapping)
    ids: dict[Any, str] = {}
    seen: dict[str, Any] = {}
    for n in graph:
        nid = _text(n)
        if nid is None:
            raise MapError(f"{source}: a node has an empty id")
        if nid in seen:
            raise MapError(f"{source}: nodes {seen[nid]!r} and {n!r} have the same id '{nid}'")
        seen[nid] = n
        ids[n] = nid
    out = graph.__class__()
    for n, d in graph.nodes(data=True):
        used = _pick(d, node_names)
        attrs = _canonical_attrs(d, used, NODE_FIELDS)
        for k, fld in used.items():
            if (value := _text(d[k])) is not None:
                attrs[fld] = value
        attrs.setdefault("label", ids[n])
        out.add_node(ids[n], **attrs)
    trust_column = None
    edges = graph.edges(keys=True, data=True) if graph.is_multigraph() else graph.edges(data=True)
    for u, v, *rest in edges:
        d = rest[-1]
        used = _pick(d, edge_names)
        attrs = _canonical_attrs(d, used, EDGE_FIELDS)
        for k in used:
            value = _trust_value(source, f"tie '{ids[u]}' - '{ids[v]}'", str(k), d[k])
            if value is not None:
                attrs["trust"] = value
                trust_column = trust_column or str(k)
        out.add_edge(ids[u], ids[v], **attrs)
    where = where or {}
    out.graph.update(
        source=source,
        where={ids[n]: where.get(n, f"node '{ids[n]}'") for n in graph},
        trust_column=trust_column,
        canonical=True,
    )
    return out


# --- from a canonical graph to the model's codes -------------------------------------------------------


@dataclass
class MapPeople:
    """An imported map in the model's terms: per-person codes and deduplicated undirected ties."""

    ids: list[str]
    labels: list[str]
    role: np.ndarray  # index into list(cfg.roles)
    ward: np.ndarray  # index into list(cfg.wards)
    community: np.ndarray  # index into list(cfg.communities), -1 none
    org: np.ndarray  # index into org_names, -1 for residents
    org_names: list[str]
    org_types: list[str]  # a key of cfg.organisations for each organisation
    eu: np.ndarray
    ev: np.ndarray
    trust: np.ndarray  # in [0.05, 1], NaN where the map gives none
    source: dict[str, Any]


def _lookup(
    source: str, what: str, spec_map: dict[str, str], allowed: dict[str, str], labels: dict[str, str] | None = None
) -> dict[str, str]:
    """Normalised map label -> config key, from network.mapping.<what> and the config's own names."""
    table = {norm(k): k for k in allowed}
    for key, label in (labels or {}).items():
        if label:
            table.setdefault(norm(label), key)
    for label, key in spec_map.items():
        if key not in allowed:
            raise MapError(
                f"{source}: network.mapping.{what}: '{label}' maps to '{key}', which is not one of the config's "
                f"{what} ({', '.join(allowed)})"
            )
        table[norm(label)] = key
    return table


def _warn_unused(
    source: str, what: str, noun: str, spec_map: dict[str, str], used: set[str], labels: Iterable[str]
) -> None:
    """One warning per `network.mapping.<what>` entry that matched nothing in the map.

    Such an entry is most often a typo, which would otherwise leave people on a default without a
    word; the closest label in the map, if any is close, is named.

    Args:
        source: the map, for the message.
        what: `roles`, `wards` or `organisations`.
        noun: what the labels are, for the message (`role`, `ward`, `organisation`).
        spec_map: the mapping's entries (map label -> config key).
        used: normalised labels that were looked up in the mapping.
        labels: the map's own labels of this kind, for suggestions.
    """
    present: dict[str, str] = {}
    for label in labels:
        present.setdefault(norm(label), str(label))
    for label in spec_map:
        if norm(label) in used:
            continue
        close = difflib.get_close_matches(norm(label), list(present), n=1)
        hint = f" (did you mean '{present[close[0]]}'?)" if close else ""
        _warn(f"{source}: network.mapping.{what}: '{label}' matches no {noun} in the map{hint}")


def resolve_map(graph: nx.Graph, cfg: Config) -> MapPeople:
    """Match a map's people and ties to the config's roles, wards, organisations and trust.

    See docs/maps.md for every rule. Warnings (`MapWarning`) report defaults that were used.

    Raises:
        MapError: an empty map, an unknown role with no mapping, ...
    """
    mapping = cfg.network.mapping
    g = canonical_graph(graph, mapping)
    source = str(g.graph.get("source") or "graph")
    where: dict[str, str] = g.graph.get("where") or {}
    n = g.number_of_nodes()
    if n == 0:
        raise MapError(f"{source}: the map is empty (no people, that is no nodes or elements)")
    if n > MAX_AGENTS:
        raise MapError(f"{source}: {n:,} people, more than the {MAX_AGENTS:,} the model allows")
    role_names, ward_names = list(cfg.roles), list(cfg.wards)
    ids = [str(x) for x in g.nodes]
    index = {nid: i for i, nid in enumerate(ids)}
    data = [g.nodes[nid] for nid in ids]
    labels = [str(d.get("label", nid)) for nid, d in zip(ids, data, strict=True)]

    # roles
    roles = _lookup(source, "roles", mapping.roles, dict(cfg.roles))
    default_role = mapping.default_role or cfg.resident_role
    if default_role not in cfg.roles:
        raise MapError(
            f"{source}: network.mapping.default_role '{default_role}' is not a role ({', '.join(cfg.roles)})"
        )
    role = np.empty(n, dtype=np.int16)
    no_role: list[str] = []
    unknown: list[tuple[str, str]] = []
    for i, d in enumerate(data):
        raw = d.get("role")
        if raw is None:
            no_role.append(ids[i])
            role[i] = role_names.index(default_role)
        elif norm(raw) in roles:
            role[i] = role_names.index(roles[norm(raw)])
        else:
            unknown.append((ids[i], str(raw)))
    if unknown:
        first_id, first = unknown[0]
        more = len(unknown) - 1
        others = f"; {_plural(more, 'more person', 'more people')} with unknown roles" if more else ""
        others += f" ({_examples(r for _, r in unknown[1:])})" if more else ""
        raise MapError(
            f"{source}: {where.get(first_id, first_id)}: unknown role '{first}'{others}; the config's roles are "
            f"{', '.join(role_names)}; map labels to roles with network.mapping.roles (e.g. {{'{first}': "
            f"{role_names[0]}}})"
        )
    if no_role:
        _warn(
            f"{source}: {_plural(len(no_role), 'person has', 'people have')} no role; given the default role "
            f"'{default_role}' (set network.mapping.default_role, or add a role or Type column)"
        )
    role_labels = [str(d["role"]) for d in data if d.get("role") is not None]
    _warn_unused(source, "roles", "role", mapping.roles, {norm(r) for r in role_labels}, role_labels)
    staff = np.array([cfg.roles[r].staff for r in role_names])[role]

    # wards
    wards = _lookup(source, "wards", mapping.wards, dict(cfg.wards), {k: w.label for k, w in cfg.wards.items()})
    default_ward = mapping.default_ward or next((k for k, w in cfg.wards.items() if not w.target), ward_names[0])
    if default_ward not in cfg.wards:
        raise MapError(
            f"{source}: network.mapping.default_ward '{default_ward}' is not a ward ({', '.join(cfg.wards)})"
        )
    ward = np.empty(n, dtype=np.int16)
    no_ward, odd_ward = 0, []
    for i, d in enumerate(data):
        raw = d.get("ward")
        if raw is not None and norm(raw) in wards:
            ward[i] = ward_names.index(wards[norm(raw)])
            continue
        ward[i] = ward_names.index(default_ward)
        if raw is None:
            no_ward += 1
        else:
            odd_ward.append(str(raw))
    if no_ward or odd_ward:
        parts = []
        if no_ward:
            parts.append(f"{_plural(no_ward, 'person has', 'people have')} no ward")
        if odd_ward:
            parts.append(
                f"{_plural(len(odd_ward), 'person has an', 'people have an')} unknown ward ({_examples(odd_ward)})"
            )
        _warn(
            f"{source}: {' and '.join(parts)}; placed in '{default_ward}' (set network.mapping.wards or "
            "network.mapping.default_ward)"
        )
    ward_labels = [str(d["ward"]) for d in data if d.get("ward") is not None]
    _warn_unused(source, "wards", "ward", mapping.wards, {norm(w) for w in ward_labels}, ward_labels)

    # communities
    communities = _lookup(
        source, "communities", {}, dict(cfg.communities), {k: c.label for k, c in cfg.communities.items()}
    )
    community_names = list(cfg.communities)
    community = np.full(n, -1, dtype=np.int16)
    odd_community = []
    for i, d in enumerate(data):
        raw = d.get("community")
        if raw is None:
            continue
        if norm(raw) in communities:
            community[i] = community_names.index(communities[norm(raw)])
        else:
            odd_community.append(str(raw))
    if odd_community:
        _warn(
            f"{source}: {_plural(len(odd_community), 'person names a community', 'people name communities')} not "
            f"in the config ({_examples(odd_community)}); left out of communities"
        )

    org, org_names, org_types = _organisations(source, cfg, data, role, ward, staff, role_names, ward_names)
    eu, ev, trust = _ties(source, g, index, n)
    info = {k: g.graph[k] for k in ("format", "sha256", "bytes") if k in g.graph}
    return MapPeople(
        ids=ids,
        labels=labels,
        role=role,
        ward=ward,
        community=community,
        org=org,
        org_names=org_names,
        org_types=org_types,
        eu=eu,
        ev=ev,
        trust=trust,
        source={"path": source, **info},
    )


def _organisations(
    source: str,
    cfg: Config,
    data: list[dict[str, Any]],
    role: np.ndarray,
    ward: np.ndarray,
    staff: np.ndarray,
    role_names: list[str],
    ward_names: list[str],
) -> tuple[np.ndarray, list[str], list[str]]:
    """Each staff member's organisation, and each organisation's type in the config."""
    mapping = cfg.network.mapping
    if not cfg.organisations:
        raise MapError(f"{source}: the config has no organisations, so the map's staff cannot be placed in one")
    types = _lookup(source, "organisations", mapping.organisations, dict(cfg.organisations))
    n = len(data)
    org = np.full(n, -1, dtype=np.int32)
    names: dict[str, int] = {}
    grouped = 0
    resident_orgs = 0
    for i, d in enumerate(data):
        name = d.get("organisation")
        if not staff[i]:
            resident_orgs += name is not None
            continue
        if name is None:
            grouped += 1
            name = mapping.default_organisation or f"{role_names[role[i]]}_{ward_names[ward[i]]}"
        org[i] = names.setdefault(str(name), len(names))
    org_names = list(names)
    if grouped:
        how = (
            f"put in '{mapping.default_organisation}'"
            if mapping.default_organisation
            else "grouped into one organisation per role and ward"
        )
        _warn(
            f"{source}: {_plural(grouped, 'staff member has', 'staff have')} no organisation; {how} "
            "(add an organisation column, or set network.mapping.default_organisation)"
        )
    if resident_orgs:
        _warn(f"{source}: {_plural(resident_orgs, 'resident names', 'residents name')} an organisation; ignored")

    # each organisation's type: by name, then by the role most of its staff have
    employs = {
        r: Counter({t: spec.staff.get(r, 0) * cfg.organisation_count(t) for t, spec in cfg.organisations.items()})
        for r in role_names
    }
    first_type = next(iter(cfg.organisations))
    org_types: list[str] = []
    inferred: list[str] = []
    looked_up: set[str] = set()  # the keys that found a type, for network.mapping.organisations entries unused
    for o, name in enumerate(org_names):
        key = norm(name)
        hit = key if key in types else _INSTANCE.sub("", key)
        t = types.get(hit)
        if t is not None:
            looked_up.add(hit)
        else:
            members = Counter(role_names[r] for r in role[org == o])
            t = first_type
            for r, _ in members.most_common():
                best = employs[r].most_common(1)
                if best and best[0][1] > 0:
                    t = best[0][0]
                    break
            inferred.append(f"'{name}' -> {t}")
        org_types.append(t)
    if inferred:
        _warn(
            f"{source}: {_plural(len(inferred), 'organisation matches', 'organisations match')} no organisation type "
            f"in the config by name; each takes the settings of the type employing most of its staff's role "
            f"({', '.join(inferred[:EXAMPLES])}{' ...' if len(inferred) > EXAMPLES else ''}); choose types with "
            "network.mapping.organisations"
        )
    _warn_unused(source, "organisations", "organisation", mapping.organisations, looked_up, org_names)
    return org, org_names, org_types


def _ties(source: str, g: nx.Graph, index: dict[str, int], n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Undirected simple ties u < v with trust normalised to [0.05, 1] (NaN where the map has none)."""
    pairs: dict[tuple[int, int], list[float]] = {}
    loops = links = 0
    for u, v, *rest in g.edges(keys=True, data=True) if g.is_multigraph() else g.edges(data=True):
        a, b = index[str(u)], index[str(v)]
        if a == b:
            loops += 1
            continue
        links += 1
        trust = rest[-1].get("trust")
        pairs.setdefault((min(a, b), max(a, b)), []).extend([] if trust is None else [float(trust)])
    if loops:
        _warn(f"{source}: {_plural(loops, 'self-loop')} (a person tied to themselves) dropped")
    merged = links - len(pairs)
    if g.is_directed():
        merges = " (links both ways or repeated between two people merged, trust averaged)" if merged else ""
        _warn(
            f"{source}: the map is directed; {_plural(links, 'link')} read as "
            f"{_plural(len(pairs), 'undirected tie')}{merges}"
        )
    elif merged:
        _warn(f"{source}: {_plural(merged, 'repeated tie')} between the same two people merged (trust averaged)")
    keys = sorted(pairs)
    eu = np.array([a for a, _ in keys], dtype=np.int32)
    ev = np.array([b for _, b in keys], dtype=np.int32)
    trust = np.array([sum(pairs[k]) / len(pairs[k]) if pairs[k] else np.nan for k in keys], dtype=float)
    given = ~np.isnan(trust)
    column = g.graph.get("trust_column") or "trust"
    if given.any():
        low = given & (trust <= 0)
        if low.any():
            _warn(
                f"{source}: {_plural(int(low.sum()), 'tie has', 'ties have')} trust of 0 or less in '{column}'; "
                "set to the lowest trust, 0.05"
            )
        top = float(trust[given].max())
        if top > 1:
            trust = trust / top
            _warn(f"{source}: trust in '{column}' runs up to {top:g}; divided by {top:g} to fit between 0 and 1")
        trust[given] = np.clip(trust[given], 0.05, 1.0)
    return eu, ev, trust


# --- writing --------------------------------------------------------------------------------------------

_GEXF_NODE_RESERVED = {"id", "pid", "start", "end", "parents", "spells", "slices", "viz"}
_GEXF_EDGE_RESERVED = {"id", "type", "start", "end", "key", "networkx_key", "spells", "slices", "viz"}


def _columns(items: Iterable[dict[str, Any]], first: tuple[str, ...], skip: set[str]) -> list[str]:
    order: dict[str, None] = dict.fromkeys(first)
    for d in items:
        order.update(dict.fromkeys(k for k in d if k not in skip))
    return [k for k in order if k not in skip]


def _clean(graph: nx.Graph) -> nx.Graph:
    """A copy with string ids and attribute values every format can hold (None dropped).

    An attribute whose values mix types (other than int and float) is written as text.
    """
    g = graph.__class__()
    for n, d in graph.nodes(data=True):
        g.add_node(str(n), **{str(k): v for k, v in ((k, _scalar(v)) for k, v in d.items()) if v is not None})
    edges = graph.edges(keys=True, data=True) if graph.is_multigraph() else graph.edges(data=True)
    for u, v, *rest in edges:
        d = rest[-1]
        g.add_edge(str(u), str(v), **{str(k): x for k, x in ((k, _scalar(x)) for k, x in d.items()) if x is not None})
    for items in ([d for _, d in g.nodes(data=True)], [d for *_, d in g.edges(data=True)]):
        kinds: dict[str, set[type]] = {}
        for d in items:
            for k, v in d.items():
                kinds.setdefault(k, set()).add(type(v))
        for k, ts in kinds.items():
            if ts == {int, float}:
                for d in items:
                    if k in d:
                        d[k] = float(d[k])
            elif len(ts) > 1:
                for d in items:
                    if k in d:
                        d[k] = str(d[k])
    return g


def _node_rows(g: nx.Graph, id_col: str | None, renames: dict[str, str]) -> tuple[list[str], list[list[Any]]]:
    attrs = [d for _, d in g.nodes(data=True)]
    keys = _columns(attrs, ("label", *NODE_FIELDS), set())
    header = ([id_col] if id_col else []) + [renames.get(k, k) for k in keys]
    rows = [
        ([n] if id_col else []) + [d.get(k, n if k == "label" else None) for k in keys] for n, d in g.nodes(data=True)
    ]
    return header, rows


def _edge_rows(
    g: nx.Graph, ends: tuple[str, str], renames: dict[str, str], direction: tuple[str, str] | None
) -> tuple[list[str], list[list[Any]]]:
    attrs = [d for *_, d in g.edges(data=True)]
    keys = _columns(attrs, ("trust",), set())
    keys = [k for k in keys if any(k in d for d in attrs)]
    header = [*ends, *([direction[0]] if direction else []), *(renames.get(k, k) for k in keys)]
    rows = [[u, v, *([direction[1]] if direction else []), *(d.get(k) for k in keys)] for u, v, d in g.edges(data=True)]
    return header, rows


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows([["" if v is None else v for v in row] for row in rows])


def _write_xlsx(path: Path, sheets: list[tuple[str, list[str], list[list[Any]]]]) -> None:
    try:
        from openpyxl import Workbook
        from openpyxl.cell import WriteOnlyCell
    except ImportError:  # pragma: no cover - a dependency
        raise MapError(f"{path}: writing Excel maps needs the openpyxl package (pip install openpyxl)") from None
    wb = Workbook(write_only=True)
    for title, header, rows in sheets:
        ws = wb.create_sheet(title)
        ws.append(header)
        for row in rows:
            cells = []
            for v in row:
                cell = WriteOnlyCell(ws, value=v)
                if isinstance(v, str) and v.startswith("="):
                    cell.data_type = "s"  # text, never a formula
                cells.append(cell)
            ws.append(cells)
    wb.save(path)


def _kumu_parts(g: nx.Graph) -> tuple[tuple[list[str], list[list[Any]]], tuple[list[str], list[list[Any]]]]:
    direction = ("Direction", "directed" if g.is_directed() else "undirected")
    nodes = _node_rows(g, "ID", {"label": "Label", "role": "Type"})
    edges = _edge_rows(g, ("From", "To"), {"trust": "Strength"}, direction)
    return nodes, edges


def _write_one(g: nx.Graph, tmp: Path, fmt: str) -> None:
    if fmt == "graphml":
        nx.write_graphml(g, tmp)
    elif fmt == "gexf":
        h = g.__class__()
        for n, d in g.nodes(data=True):
            h.add_node(n, **{(f"{k}_attr" if k in _GEXF_NODE_RESERVED else k): v for k, v in d.items()})
        for u, v, d in g.edges(data=True):
            h.add_edge(u, v, **{(f"{k}_attr" if k in _GEXF_EDGE_RESERVED else k): x for k, x in d.items()})
        nx.write_gexf(h, tmp)
    elif fmt == "edgelist":
        _write_csv(tmp, *_edge_rows(g, ("Source", "Target"), {}, None))
    elif fmt == "kumu-xlsx":
        (nh, nr), (eh, er) = _kumu_parts(g)
        _write_xlsx(tmp, [("Elements", nh, nr), ("Connections", eh, er)])
    elif fmt == "kumu-json":
        (nh, nr), (eh, er) = _kumu_parts(g)
        lower = {
            "ID": "id",
            "Label": "label",
            "Type": "type",
            "From": "from",
            "To": "to",
            "Direction": "direction",
            "Strength": "strength",
        }
        doc = {
            "elements": [{lower.get(k, k): v for k, v in zip(nh, r, strict=True) if v is not None} for r in nr],
            "connections": [{lower.get(k, k): v for k, v in zip(eh, r, strict=True) if v is not None} for r in er],
        }
        tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    elif fmt == "prsm-xlsx":
        labels = [d.get("label", n) for n, d in g.nodes(data=True)]
        unique = len({norm(x) for x in labels}) == len(labels)
        name = {n: (d.get("label", n) if unique else n) for n, d in g.nodes(data=True)}
        header, rows = _node_rows(g, "ID", {"label": "Label"})
        if not unique:
            rows = [[n, n, *r[2:]] for n, r in zip(g.nodes, rows, strict=True)]
        eh, er = _edge_rows(g, ("From", "To"), {}, None)
        er = [[name[r[0]], name[r[1]], *r[2:]] for r in er]
        _write_xlsx(tmp, [("Factors", header, rows), ("Links", eh, er)])
    else:
        raise MapError(f"{tmp}: unknown map format '{fmt}' (one of {', '.join(FORMATS)})")


def write_map(graph: nx.Graph, path: str | Path, fmt: str | None = None) -> Path:
    """Write a graph in canonical form (see the module docstring) as a map file, atomically.

    `label`, `role`, `ward`, `organisation`, `community` and `trust` are written under each format's
    own names (Kumu: `Label`, `Type`, `Strength`; CSV: `Id`, `Label`, `Source`, `Target`); other
    attributes under their own names. The `csv` and `kumu-csv` formats write a directory.
    Everything is written beside `path` first and moved into place at the end.

    Args:
        graph: the network (node ids are written as text).
        path: the file, or the directory for the `csv` and `kumu-csv` formats.
        fmt: one of `FORMATS`; default: from the suffix of `path`.

    Returns:
        The path written.

    Raises:
        MapError: an unknown format, or a path that cannot be written.
    """
    out = Path(path)
    fmt = fmt or SUFFIX_FORMATS.get(out.suffix.lower())
    if fmt not in FORMATS:
        raise MapError(f"{path}: say which format to write (one of {', '.join(FORMATS)})")
    if not out.parent.is_dir():
        raise MapError(f"{path}: the directory '{out.parent}' does not exist")
    g = _clean(graph)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    try:
        if fmt in DIRECTORY_FORMATS:
            if out.exists() and not out.is_dir():
                raise MapError(f"{path}: is an existing file; the {fmt} format writes a directory")
            tmp.mkdir()
            if fmt == "csv":
                files = {
                    "nodes.csv": _node_rows(g, "Id", {"label": "Label"}),
                    "edges.csv": _edge_rows(
                        g, ("Source", "Target"), {}, ("Type", "Directed" if g.is_directed() else "Undirected")
                    ),
                }
            else:
                (nh, nr), (eh, er) = _kumu_parts(g)
                files = {"elements.csv": (nh, nr), "connections.csv": (eh, er)}
            for name, (header, rows) in files.items():
                _write_csv(tmp / name, header, rows)
            if not out.exists():
                os.replace(tmp, out)
            else:
                for name in files:
                    os.replace(tmp / name, out / name)
                tmp.rmdir()
        else:
            if out.is_dir():
                raise MapError(f"{path}: is a directory; the {fmt} format writes one file")
            _write_one(g, tmp, fmt)
            os.replace(tmp, out)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise
    return out


# --- the model's network, for export ------------------------------------------------------------------


def people_frame(model: CommonPurposeModel) -> pd.DataFrame:
    """`model.people_frame()` with each person's map `id` and `label`, and `community`."""
    df = model.people_frame()
    s = model.state
    meta = model.population.meta
    ids = list(meta.get("node_ids") or [])
    labels = list(meta.get("labels") or [])
    taken = set(ids)
    for i in range(len(ids), s.n):  # people the map did not have (partners joining)
        nid = str(i)
        ids.append(nid if nid not in taken else f"agent_{i}")
    roles = df["role"].tolist()
    labels += [f"{roles[i]} {ids[i]}" for i in range(len(labels), s.n)]
    df["id"] = ids
    df["label"] = labels
    names = np.array([*model.community_names, ""], dtype=object)
    df["community"] = [c or None for c in names[s.community]]
    return df


def ties_frame(model: CommonPurposeModel) -> pd.DataFrame:
    """Every live tie once: source and target (agent indices), trust and kind."""
    from abm.network import TIE_KINDS

    t = model.ties
    live = np.flatnonzero(t.alive)
    return pd.DataFrame(
        {
            "source": t.eu[live].astype(np.int64),
            "target": t.ev[live].astype(np.int64),
            "trust": t.trust[live].astype(float),
            "kind": np.array(TIE_KINDS, dtype=object)[t.kind[live]],
        }
    )


#: People's columns exported as node attributes (besides id and label).
EXPORT_NODE_COLUMNS = ("role", "ward", "organisation", "community", "vision", "value", "acting", "stage")


def graph_from_frames(people: pd.DataFrame, ties: pd.DataFrame) -> nx.Graph:
    """The network as a graph: nodes keyed by map id with role, ward, organisation, community and
    final state (vision, value, acting, stage); ties with trust and kind."""
    g = nx.Graph()
    ids = people["id"].astype(str).tolist()
    cols = [c for c in ("label", *EXPORT_NODE_COLUMNS) if c in people.columns]
    for nid, row in zip(ids, people[cols].itertuples(index=False), strict=True):
        g.add_node(nid, **{k: v for k, v in zip(cols, (_scalar(x) for x in row), strict=True) if v is not None})
    index = people["index"].to_numpy() if "index" in people.columns else np.arange(len(ids))
    where = {int(i): nid for i, nid in zip(index, ids, strict=True)}
    g.add_edges_from(
        (where[int(u)], where[int(v)], {"trust": float(t), "kind": str(k)})
        for u, v, t, k in ties[["source", "target", "trust", "kind"]].itertuples(index=False)
    )
    return g


def model_graph(model: CommonPurposeModel) -> nx.Graph:
    """The model's current network with each person's role, place and state (see `graph_from_frames`)."""
    return graph_from_frames(people_frame(model), ties_frame(model))


def run_graph(run_dir: str | Path) -> nx.Graph:
    """The final network of a run directory written by `abm run` (from people.parquet and ties.parquet).

    Raises:
        MapError: not a complete run, or a run written before people and ties were saved.
    """
    from abm.io import PEOPLE_FILE, TIES_FILE, read_run

    try:
        run = read_run(run_dir)
    except FileNotFoundError as exc:
        raise MapError(str(exc)) from None
    if run.people is None or run.ties is None:
        raise MapError(
            f"{run_dir}: the run has no {PEOPLE_FILE} or {TIES_FILE} (written by newer versions); repeat it with "
            f"'abm run {Path(run_dir) / 'config.yaml'}'"
        )
    return graph_from_frames(run.people, run.ties)


def summary(graph: nx.Graph) -> str:
    """One line: people, ties, and the roles present."""
    roles = Counter(d.get("role", "?") for _, d in graph.nodes(data=True))
    shown = ", ".join(f"{r} {c:,}" for r, c in roles.most_common())
    return f"{graph.number_of_nodes():,} people ({shown}), {graph.number_of_edges():,} ties"
