"""What the buttons do: one `Controller` per page ties the page's `Ui` to its `Session`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from abm.app import compare
from abm.app.session import Session, StepError
from abm.app.settings import Settings, parse_seed, preset_names
from abm.app.ui import Ui, friendly, log
from abm.app.upload import Upload, UploadedMap, clean_name, describe, public, read_uploaded, store_upload


class Controller:
    """Actions on one page's run. Every method is safe to call from a click: failures become the
    page's message and leave the session usable."""

    def __init__(self, settings: Settings) -> None:
        self.ui = Ui.create(settings)
        self.session = Session(settings)
        # the Compare tab starts at this scenario and its pair
        self.ui.cmp_a.set(settings.preset)
        self.ui.cmp_b.set(compare.suggested_b(settings.preset, list(preset_names())))
        self.ui.cmp_weeks.set(str(settings.config.steps))
        try:
            self.session.reset(settings)
        except Exception as exc:  # e.g. a broken scenario file: the page shows why
            log.warning("could not build the first model", exc_info=True)
            self.ui.message.set(f"Could not build the model for {settings.preset!r}: {friendly(exc)}")

    # --- building ------------------------------------------------------------------------------
    def draft_with_seed(self) -> Settings:
        """The draft settings with the seed box's value (raises ValueError with a readable message)."""
        return self.ui.draft.value.with_(seed=parse_seed(self.ui.seed_text.value))

    def reset(self, settings: Settings | None = None) -> bool:
        """A new run from `settings` (default: the sliders and the seed box). Returns success."""
        ui = self.ui
        ui.set_playing(False)
        try:
            chosen = settings or self.draft_with_seed()
            self.session.reset(chosen)
        except Exception as exc:
            log.info("reset refused: %s", exc)
            ui.message.set(
                self.public(f"Could not build the model for {(settings or ui.draft.value).preset!r}: {friendly(exc)}")
            )
            return False
        ui.draft.set(chosen)
        ui.seed_text.set(str(chosen.seed))
        ui.selected.set(-1)
        ui.message.set("")
        return True

    def choose_preset(self, preset: str) -> None:
        """A new scenario: the sliders take its values, and a new run starts at once."""
        try:
            seed = parse_seed(self.ui.seed_text.value)
        except ValueError:
            seed = self.session.settings.seed
        try:
            settings = Settings.for_preset(preset, seed)
        except Exception as exc:
            self.ui.message.set(f"Could not read the scenario {preset!r}: {friendly(exc)}")
            return
        self._follow_in_compare(self.session.settings, settings)
        self.ui.draft.set(settings)
        self.ui.clear_filters()
        self.reset(settings)

    def _follow_in_compare(self, old: Settings, new: Settings) -> None:
        """The Compare tab's scenario A (with its pair as B, and its weeks) follows the sidebar's
        scenario, unless A was changed there by hand."""
        ui = self.ui
        if ui.cmp_a.value != old.preset:
            return
        ui.cmp_a.set(new.preset)
        ui.cmp_b.set(compare.suggested_b(new.preset, list(preset_names())))
        if ui.cmp_weeks.value.strip() == str(old.config.steps):
            ui.cmp_weeks.set(str(new.config.steps))

    def apply_seed(self, text: str) -> None:
        """Enter in the seed box: a new run with that seed (a bad seed only shows its message)."""
        self.ui.seed_text.set(text)
        try:
            seed = parse_seed(text)
        except ValueError:
            return  # the box shows the problem under itself
        self.reset(self.ui.draft.value.with_(seed=seed))

    def restore_scenario_values(self) -> None:
        """Put every slider back to the scenario file's value (applied at the next Reset)."""
        draft = self.ui.draft.value
        self.ui.draft.set(Settings.for_preset(draft.preset, draft.seed))

    def public(self, text: str) -> str:
        """A message without the session's temporary upload directory in it."""
        return public(text, self.session.maps.root)

    # --- a map of one's own ----------------------------------------------------------------------
    def upload_map(self, files: Sequence[Upload | dict[str, Any]]) -> bool:
        """Run the scenario (sliders and seed as for Reset) on an uploaded map. Returns success.

        `files` are what the page's file drop hands over (Solara `FileInfo` dicts, or `Upload`s).
        Any problem becomes the page's one message, and the session keeps its model, its
        settings and the map it had (the refused upload's files are deleted at once).
        """
        ui = self.ui
        session = self.session
        uploads = [f if isinstance(f, Upload) else Upload.from_info(f) for f in files]
        name = " + ".join(clean_name(u.name) for u in uploads) or "the upload"
        ui.set_playing(False)
        slot = None
        try:
            settings = self.draft_with_seed()
            slot, path = store_upload(session.maps, uploads)
            graph, notes = read_uploaded(slot, path, settings.config)
            model, fixes = session.build(settings, path, graph.number_of_nodes())
            notes += [self.public(line) for line in fixes]
            new = describe(name, slot, path, graph, model, notes)
        except Exception as exc:
            session.maps.discard(slot)
            log.info("upload refused: %s", exc)
            ui.message.set(self.public(f"Map not used: {friendly(exc)}"))
            return False
        old = session.map
        session.install(model, settings, new)
        self._new_network(old, settings, f"Now running on your map {new.name}: {new.summary()}.")
        return True

    def clear_map(self) -> bool:
        """Back to the scenario's own network (a new run with the sliders and seed). Returns success."""
        old = self.session.map
        if old is None:
            return True
        ui = self.ui
        ui.set_playing(False)
        try:
            settings = self.draft_with_seed()
            self.session.reset(settings, map=None)
        except Exception as exc:
            log.info("clearing the map refused: %s", exc)
            ui.message.set(self.public(f"Could not go back to the scenario's network: {friendly(exc)}"))
            return False
        self._new_network(old, settings, f"Map {old.name} cleared: back to the scenario's own network.")
        return True

    def _new_network(self, old: UploadedMap | None, settings: Settings, notice: str) -> None:
        """After a run on another network: drop the old map's files, show the new run's settings."""
        if old is not None:
            self.session.maps.discard(old.source.parent if old.source.is_file() else old.source)
        ui = self.ui
        ui.draft.set(settings)
        ui.seed_text.set(str(settings.seed))
        ui.clear_filters()
        ui.message.set("")
        ui.notice.set(notice)

    def close(self) -> None:
        """The page is gone: stop playing and delete the session's uploads."""
        self.ui.set_playing(False)
        self.session.close()

    # --- running -------------------------------------------------------------------------------
    def step(self) -> None:
        try:
            self.session.step()
        except StepError as exc:
            self.ui.set_playing(False)
            self.ui.message.set(str(exc))

    def jump(self, weeks: int) -> None:
        self.ui.set_playing(False)
        try:
            self.session.advance(weeks)
        except StepError as exc:
            self.ui.message.set(str(exc))

    def toggle_play(self) -> None:
        self.ui.set_playing(not self.ui.playing.value)

    def fire(self, kind: str, **params: Any) -> None:
        try:
            text = self.session.fire(kind, **params)
        except Exception as exc:
            self.ui.message.set(friendly(exc))
            return
        self.ui.notice.set(f"Week {self.session.model.week if self.session.model else 0}: {text}")
        self.ui.message.set("")

    def select(self, index: Any) -> None:
        try:
            i = int(index)
        except (TypeError, ValueError):
            i = -1
        model = self.session.model
        if model is None or not 0 <= i < model.state.n:
            i = -1
        self.ui.selected.set(i)
