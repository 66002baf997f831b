"""Downloads of the current run: its series (CSV and Parquet), its figures (PNG), its config.

Each function returns the bytes of one file and is called only when someone clicks its download
button. The tables are the model's own outputs (`model_frame`, `groups_frame`, `people_frame`),
the same as `abm run` writes; `config.yaml` is the resolved scenario with the seed and any events
fired from the app, so `abm run config.yaml` repeats the run.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable

import numpy as np
import pandas as pd
import yaml

from abm.app import charts
from abm.app.session import Session
from abm.app.theme import role_shapes


def _csv(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode("utf-8")


def _parquet(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def weekly(session: Session) -> pd.DataFrame:
    with session.lock:
        assert session.model is not None
        return session.model.model_frame().copy()


def groups(session: Session) -> pd.DataFrame:
    with session.lock:
        assert session.model is not None
        return session.model.groups_frame().copy()


def people(session: Session) -> pd.DataFrame:
    with session.lock:
        assert session.model is not None
        return session.model.people_frame().copy()


def events(session: Session) -> pd.DataFrame:
    with session.lock:
        assert session.model is not None
        return pd.DataFrame(session.model.events_log, columns=["week", "text"])


def map_note(session: Session) -> str:
    """YAML comment lines naming the uploaded map the run used ("" when it used the scenario's network)."""
    m = session.map
    if m is None:
        return ""
    return (
        f"# This run used a map uploaded in the app: {m.name} ({m.format}, {m.size:,} bytes),\n"
        f"# sha256 {m.sha256} (network.source_sha256: a changed map is refused).\n"
        f"# network.source names it {m.export_name!r}: keep it beside this file (the app's\n"
        "# 'All of the above (ZIP)' download includes it), then run `abm run config.yaml`.\n"
    )


def config_yaml(session: Session) -> bytes:
    text = yaml.safe_dump(session.exported_config(), sort_keys=False, allow_unicode=True)
    return (map_note(session) + text).encode("utf-8")


def network_png(session: Session) -> bytes:
    with session.lock:
        model = session.model
        assert model is not None
        view = session.view()
        layout = session.layout
        if layout is None:
            raise ValueError("This model is drawn as blocks (too many people to draw one by one).")
        stages = model.stage.copy()
        t = model.ties
        ties = np.column_stack([t.eu[t.alive], t.ev[t.alive]]).ravel().astype(np.int64)
        shapes_by_role = role_shapes(list(model.role_names))
        shapes = [shapes_by_role[r] for r in model.state.role]
    return charts.network_png(view, layout, stages, ties, shapes)


def _figure(draw: Callable) -> Callable[[Session], bytes]:
    def make(session: Session) -> bytes:
        view = session.view()
        assert view is not None
        return draw(view)

    return make


#: file name -> (label, function of the session returning bytes, mime type)
FILES: dict[str, tuple[str, Callable[[Session], bytes], str]] = {
    "weekly.csv": ("Weekly figures (CSV)", lambda s: _csv(weekly(s)), "text/csv"),
    "weekly.parquet": ("Weekly figures (Parquet)", lambda s: _parquet(weekly(s)), "application/octet-stream"),
    "groups.csv": ("By role, ward, community, organisation (CSV)", lambda s: _csv(groups(s)), "text/csv"),
    "groups.parquet": ("By group (Parquet)", lambda s: _parquet(groups(s)), "application/octet-stream"),
    "people.csv": ("Everyone now (CSV)", lambda s: _csv(people(s)), "text/csv"),
    "events.csv": ("Event log (CSV)", lambda s: _csv(events(s)), "text/csv"),
    "config.yaml": ("Scenario to repeat this run (YAML)", config_yaml, "text/yaml"),
    "trends.png": ("Trends (PNG)", _figure(charts.trend_png), "image/png"),
    "ladder.png": ("Commitment ladder (PNG)", _figure(charts.ladder_png), "image/png"),
    "by_role.png": ("By role (PNG)", _figure(lambda v: charts.groups_png(v, "By role")), "image/png"),
    "by_ward.png": ("By ward (PNG)", _figure(lambda v: charts.groups_png(v, "By ward")), "image/png"),
    "active_lives.png": ("Active Lives by ward (PNG)", _figure(charts.active_lives_png), "image/png"),
    "structures.png": ("Structures and embedded processes (PNG)", _figure(charts.structures_png), "image/png"),
    "network.png": ("Network (PNG)", network_png, "image/png"),
}


def everything_zip(session: Session) -> bytes:
    """Every file above in one ZIP, with a README naming the run."""
    buf = io.BytesIO()
    view = session.view()
    assert view is not None
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, (_, make, _) in FILES.items():
            try:
                zf.writestr(name, make(session))
            except ValueError:
                continue  # e.g. no network picture for a model drawn as blocks
        about = {
            "scenario": view.name,
            "preset": view.preset,
            "seed": view.seed,
            "week": view.week,
            "people": view.people,
            "note": "common-purpose model: explores and teaches; its outputs are not forecasts",
        }
        m = session.map
        if m is not None:
            # the map itself, where config.yaml's network.source expects it
            for name, data in m.files:
                zf.writestr(name, data)
            about["map"] = {
                "name": m.name,
                "file": m.export_name,
                "format": m.format,
                "sha256": m.sha256,
                "bytes": m.size,
                "people": m.people,
                "ties": m.ties,
            }
        zf.writestr("run.json", json.dumps(about, indent=2))
    return buf.getvalue()


def file_name(view, name: str) -> str:
    """`south_tees_seed1_week12_weekly.csv` style names, safe for any file system."""
    stem = "".join(ch if ch.isalnum() else "_" for ch in view.preset).strip("_")
    return f"{stem}_seed{view.seed}_week{view.week}_{name}"
