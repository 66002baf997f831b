"""The workshop app: an interactive Solara front end for the Common Purpose model.

Run it with `make app` (or `solara run app.py`); `app.py` at the repository root imports `Page`
from here. Modules:

- `settings`: scenario, seed and slider values as data, turned into config overrides;
- `session`: one browser session's model, its lock, history and the `View` the page draws;
- `layout`: the grouped network layout (computed once per network) and the block view's data;
- `svg`, `charts`, `diagram`: charts and the Common Purpose Model diagram as SVG (PNG for export);
- `network.vue` / `network`: the network canvas, drawn in the browser;
- `explain`, `compare`, `export`: explanations, comparisons with replicate bands, downloads;
- `upload` (with `upload.vue`): a map of one's own, checked, stored per session, summarised;
- `ui`, `controller`, `controls`, `panels`, `page`: the page itself.
"""
