"""Bring your own system map in the app: check an upload, keep it for the session, summarise it.

An upload is checked in this order, and the first problem is the one message the page shows:
how many files and their names (one map file, or a CSV pair), the file type from the name, the
size from what the browser reports (before any byte is read), the size again while reading (at
most the limit plus one byte is read), the content (an XML map must start like XML and name its
root, a workbook must be a zip archive, ...), then `abm.mapio.read_map` parses it (safe XML:
no DTDs or entities) and the session builds the model on it, which matches its roles, wards and
organisations to the scenario (`abm.mapio.resolve_map`).

Each session keeps its uploads in its own `MapStore`, a temporary directory created on the
first upload and deleted when the session ends (or when the store is garbage collected); nothing
is kept at module level. The model reads the map from that directory (`network.source`) at every
Reset, so the map stays in use until it is cleared; exports name the file and its SHA-256 and
include the file itself (see `abm.app.export`).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
import threading
import warnings
import weakref
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import networkx as nx

from abm.app.settings import MAX_AGENTS, MAX_UPLOAD_MB
from abm.config import Config
from abm.mapio import MapError, MapWarning, read_map
from abm.model import CommonPurposeModel

#: One-file map types the app takes, by suffix (a CSV pair is two `.csv` files, below).
UPLOAD_SUFFIXES = (".graphml", ".gexf", ".xml", ".json", ".xlsx", ".csv")
#: Two-file CSV layouts: Gephi's spreadsheet pair and Kumu's.
CSV_PAIRS = (("nodes.csv", "edges.csv"), ("elements.csv", "connections.csv"))
#: What the file picker offers (the browser's `accept` attribute).
ACCEPT = ",".join(UPLOAD_SUFFIXES)
#: Where an upload's name is shown: at most this many characters, and only these.
_NAME_LEN = 80
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")
ALLOWED = (
    "a .graphml, .gexf, .xml (GraphML or GEXF), .json (Kumu), .xlsx (Kumu or PRSM) or .csv (edge list) "
    "file, or a CSV pair (nodes.csv + edges.csv, or elements.csv + connections.csv)"
)


@dataclass(frozen=True)
class Upload:
    """One file as the page hands it over: its name, the size the browser reports, and a reader."""

    name: str
    size: int
    file: BinaryIO

    @classmethod
    def from_info(cls, info: dict[str, Any]) -> Upload:
        """From Solara's `FileInfo` dict (`name`, `size`, `file_obj`)."""
        return cls(name=str(info.get("name") or ""), size=int(info.get("size") or 0), file=info["file_obj"])


@dataclass(frozen=True)
class UploadedMap:
    """A map that was read and used to build a model: where it is, what it holds, what was fixed up."""

    name: str  # as uploaded (cleaned), e.g. "our map.graphml" or "nodes.csv + edges.csv"
    source: Path  # the file (or, for a CSV pair, the directory) the model reads
    export_name: str  # its name beside an exported config.yaml (a file, or a directory for a pair)
    files: tuple[tuple[str, bytes], ...]  # (path relative to the export, bytes) for the export zip
    format: str
    sha256: str
    size: int
    people: int
    ties: int
    roles: tuple[tuple[str, int], ...]  # model role -> people, most common first
    default_role: str
    defaulted: int  # people with no role in the map, given `default_role`
    self_loops: int
    directed: bool
    warnings: tuple[str, ...]

    def summary(self) -> str:
        """One line: people, ties, roles."""
        roles = ", ".join(f"{r} {c:,}" for r, c in self.roles)
        return f"{self.people:,} people ({roles}), {self.ties:,} ties"


def clean_name(name: str) -> str:
    """The upload's base name, reduced to safe characters (never a path)."""
    base = re.split(r"[\\/]", name or "")[-1].strip()
    base = _UNSAFE.sub("_", base).strip(" .")[:_NAME_LEN]
    return base or "map"


def public(text: str, where: Path | None) -> str:
    """A message with the session's temporary directory left out (the user knows the file by name)."""
    if where is None:
        return text
    text = re.sub(re.escape(str(where)) + r"/upload\d+/", "", text)
    text = text.replace(f"{where}/", "").replace(str(where), "the upload")
    # the parser names the file after its path: with the path gone, "weird.csv: weird.csv: ..." is left
    return re.sub(r"(^|\s)([^\s:]+): \2: ", r"\1\2: ", text)


def _suffix(name: str) -> str:
    return Path(name).suffix.lower()


def check_uploads(uploads: Sequence[Upload], max_mb: float = MAX_UPLOAD_MB) -> str:
    """Check the number, names and reported sizes of the files before reading any of them.

    Returns:
        The format family: "file" (one map file) or "pair" (a CSV pair).

    Raises:
        MapError: no file, too many, a type the app does not read, or too big.
    """
    if not uploads:
        raise MapError(f"No file received; upload {ALLOWED}.")
    names = [clean_name(u.name) for u in uploads]
    if len(uploads) > 2:
        shown = ", ".join(names) if len(names) <= 4 else f"{', '.join(names[:3])} and {len(names) - 3:,} more"
        raise MapError(f"{len(uploads)} files received ({shown}); upload {ALLOWED}.")
    for name in names:
        if _suffix(name) not in UPLOAD_SUFFIXES:
            kind = f"'{_suffix(name)}' files" if _suffix(name) else "files without a suffix"
            hint = " (save it as .xlsx)" if _suffix(name) == ".xls" else ""
            raise MapError(f"{name}: {kind} are not map files the app reads{hint}; upload {ALLOWED}.")
    family = "file"
    if len(uploads) == 2:
        lower = tuple(sorted(n.lower() for n in names))
        if not any(lower == tuple(sorted(pair)) for pair in CSV_PAIRS):
            raise MapError(
                f"{' and '.join(names)}: two files must be a CSV pair, nodes.csv + edges.csv or elements.csv + "
                "connections.csv (other maps are one file)"
            )
        family = "pair"
    limit = int(max_mb * 1e6)
    total = sum(max(int(u.size), 0) for u in uploads)
    if total > limit:
        what = names[0] if len(uploads) == 1 else " + ".join(names)
        raise MapError(f"{what}: {total / 1e6:,.1f} MB is more than the {max_mb:g} MB the app takes per map.")
    return family


def read_upload(upload: Upload, max_mb: float = MAX_UPLOAD_MB) -> bytes:
    """The file's bytes, never more than the limit plus one (the browser's reported size may be wrong).

    Raises:
        MapError: the file is bigger than the limit after all, or could not be received.
    """
    limit = int(max_mb * 1e6)
    name = clean_name(upload.name)
    try:
        data = upload.file.read(limit + 1)
    except Exception as exc:  # a dropped connection, a browser that went away
        raise MapError(f"{name}: the file could not be received ({type(exc).__name__}); try again.") from None
    if len(data) > limit:
        raise MapError(f"{name}: more than the {max_mb:g} MB the app takes per map.")
    return bytes(data)


def check_content(name: str, data: bytes) -> None:
    """Does the content match the file type? (The parsers check the rest.)

    Raises:
        MapError: naming the file, what it should start with, and what it holds instead.
    """
    suffix = _suffix(name)
    if not data.strip():
        raise MapError(f"{name}: the file is empty.")
    head = data[:65536].lstrip(b"\xef\xbb\xbf \t\r\n")
    lower = head.lower()
    if suffix in (".graphml", ".gexf", ".xml"):
        if not head.startswith(b"<"):
            raise MapError(f"{name}: not an XML file (it should start with '<', as GraphML and GEXF do).")
        kinds = {".graphml": (b"<graphml",), ".gexf": (b"<gexf",), ".xml": (b"<graphml", b"<gexf")}[suffix]
        if not any(k in lower for k in kinds):
            want = " or ".join(f"<{k[1:].decode()}>" for k in kinds)
            raise MapError(f"{name}: XML, but not a map: no {want} element near its start.")
    elif suffix == ".xlsx":
        if not data.startswith(b"PK\x03\x04"):
            raise MapError(f"{name}: not an Excel .xlsx workbook (an .xlsx file is a zip archive).")
    elif suffix == ".json":
        if not head.startswith(b"{"):
            raise MapError(f"{name}: not a Kumu JSON map (it should start with '{{').")
    elif b"\x00" in data[:65536] or data.startswith(b"PK\x03\x04"):
        raise MapError(f"{name}: a binary file, not CSV text.")


class MapStore:
    """One session's uploaded maps on disk: a private temporary directory, deleted with the session."""

    def __init__(self) -> None:
        self._dir: Path | None = None
        self._count = 0
        self._lock = threading.Lock()
        self._finalizer: weakref.finalize | None = None

    @property
    def root(self) -> Path | None:
        return self._dir

    def new_slot(self) -> Path:
        """A fresh, empty directory for one upload."""
        with self._lock:
            if self._dir is None or not self._dir.exists():
                self._dir = Path(tempfile.mkdtemp(prefix="cp-map-"))
                # a session that is never closed properly still loses its files when collected
                self._finalizer = weakref.finalize(self, shutil.rmtree, str(self._dir), True)
            self._count += 1
            slot = self._dir / f"upload{self._count}"
            slot.mkdir()
            return slot

    def discard(self, path: Path | None) -> None:
        """Delete one upload's directory (an upload that was refused, or a map that was replaced)."""
        if path is not None and self._dir is not None and path.parent == self._dir:
            shutil.rmtree(path, ignore_errors=True)

    def close(self) -> None:
        """Delete every upload of this session."""
        with self._lock:
            if self._finalizer is not None:
                self._finalizer()  # removes the directory, once
                self._finalizer = None
            self._dir = None


def store_upload(store: MapStore, uploads: Sequence[Upload], max_mb: float = MAX_UPLOAD_MB) -> tuple[Path, Path]:
    """Check, read and write the upload into a fresh slot of `store`.

    Returns:
        (slot directory, the path `read_map` reads: the file, or the slot itself for a CSV pair).

    Raises:
        MapError: the first problem found (nothing is left in the store then).
    """
    family = check_uploads(uploads, max_mb)
    blobs = []
    for u in uploads:
        name = clean_name(u.name)
        data = read_upload(u, max_mb)
        check_content(name, data)
        blobs.append((name.lower() if family == "pair" else name, data))
    if sum(len(b) for _, b in blobs) > int(max_mb * 1e6):
        raise MapError(f"{' + '.join(n for n, _ in blobs)}: more than the {max_mb:g} MB the app takes per map.")
    slot = store.new_slot()
    try:
        for name, data in blobs:
            (slot / name).write_bytes(data)
    except OSError as exc:  # a full disk: nothing half-written is kept
        store.discard(slot)
        names = " + ".join(n for n, _ in blobs)
        raise MapError(f"{names}: could not be stored on the server ({exc.strerror}).") from None
    return slot, slot if family == "pair" else slot / blobs[0][0]


def read_uploaded(slot: Path, path: Path, cfg: Config, max_mb: float = MAX_UPLOAD_MB) -> tuple[nx.Graph, list[str]]:
    """Read a stored upload with `abm.mapio.read_map` (the people count checked against `MAX_AGENTS`).

    Returns:
        The canonical graph and the parser's warnings (one line each, without the temporary path).

    Raises:
        MapError: the file is malformed, unsafe, empty, or has too many people.
    """
    with fixups(path) as notes:
        graph = read_map(path, cfg.network.mapping, max_mb=max_mb)
    people = graph.number_of_nodes()
    if people > MAX_AGENTS:
        raise MapError(f"{path.name}: {people:,} people is more than this app allows per session ({MAX_AGENTS:,}).")
    return graph, [public(line, slot) for line in notes]


#: `warnings.catch_warnings` swaps process-wide state: one map read at a time records fix-ups.
_FIXUPS_LOCK = threading.Lock()


@contextlib.contextmanager
def fixups(source: Path) -> Iterator[list[str]]:
    """Collect the `MapWarning` lines about the map at `source` raised inside the block.

    Only lines naming `source` (which is in this session's own directory) are kept, so a line
    about another session's map can never show up here; other warnings go on as usual.
    """
    notes: list[str] = []
    with _FIXUPS_LOCK, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MapWarning)
        try:
            yield notes
        finally:
            for w in caught:
                if not issubclass(w.category, MapWarning):
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
                elif str(w.message).startswith(f"{source}:"):
                    notes.append(str(w.message))


def describe(
    name: str,
    slot: Path,
    path: Path,
    graph: nx.Graph,
    model: CommonPurposeModel,
    notes: Sequence[str],
) -> UploadedMap:
    """The summary of a map and of the model built on it (roles as matched, ties as kept)."""
    cfg = model.config
    counts = Counter(model.role_names[int(c)] for c in model.state.role)
    default_role = cfg.network.mapping.default_role or cfg.resident_role
    defaulted = sum(1 for _, d in graph.nodes(data=True) if d.get("role") is None)
    pair = path == slot
    files = sorted(p for p in slot.iterdir() if p.is_file())
    export_name = "uploaded_map" if pair else path.name
    return UploadedMap(
        name=name,
        source=path,
        export_name=export_name,
        files=tuple((f"{export_name}/{f.name}" if pair else f.name, f.read_bytes()) for f in files),
        format=str(graph.graph.get("format", "")),
        sha256=str(graph.graph.get("sha256", "")),
        size=int(graph.graph.get("bytes", 0)),
        people=graph.number_of_nodes(),
        ties=int(model.ties.count),
        roles=tuple(counts.most_common()),
        default_role=default_role,
        defaulted=defaulted,
        self_loops=nx.number_of_selfloops(graph),
        directed=graph.is_directed(),
        warnings=tuple(dict.fromkeys(notes)),
    )
