"""Play: the thread that steps a session's model while Play is on, and how it is paced.

Every page that plays steps its model and redraws in its own thread, and all of them share one
Python process (and so, for pure-Python work such as building widget updates, one core). Left
alone, 30 pages playing at once each get a thirtieth of that core in 5 ms slices: a redraw that
needs 30 ms of CPU then takes a second of wall time, and every page lags behind its own run.
Three rules keep what each page shows fresh instead (README, "Workshop load"):

1. One frame at a time, server-wide (`FRAMES`): a page waits for its turn *before* it steps, so
   its step and redraw then run without competing with other pages' redraws. The wait is spent
   idle, not holding a stale week back from the screen. Solara sends a redraw's messages from
   the redrawing thread and a page that reads slowly can hold that send up, so a frame that takes
   longer than `FRAME_PATIENCE_S` lets one more in (measured: once, 30 pages pressing Play
   together held one first frame up for 56 s), but never more than `FRAMES_AT_ONCE`: on an
   overloaded server every frame is slow, and letting them all in makes each slower still.
2. One frame in flight per page: after a redraw, Play waits until the browser says it has
   painted that frame (`Shown`, a hidden Vue component), or `SHOWN_TIMEOUT_S` at most. A busy
   laptop or a slow network then slows Play down rather than piling updates up.
3. When frames come slower than the chosen speed, each frame steps several weeks (at most
   `MAX_WEEKS_PER_FRAME`), so Play keeps close to its speed in weeks per second while the page
   redraws less often. Every week is still stepped and recorded; only drawing is skipped.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable

import solara

from abm.app.controller import Controller
from abm.app.session import StepError

#: How long a frame may keep the others waiting (its redraw usually takes 30-100 ms).
FRAME_PATIENCE_S = 0.3
#: The most frames in progress at once, however long they take.
FRAMES_AT_ONCE = 2
#: The most weeks one frame steps when the page cannot keep up with the chosen speed.
MAX_WEEKS_PER_FRAME = 4
#: How long Play waits for the browser to report a painted frame before stepping anyway.
SHOWN_TIMEOUT_S = 3.0
_POLL_S = 0.05  # how often a waiting Play thread checks whether it was cancelled


def weeks_for_frame(since_last_s: float, speed: float) -> int:
    """Weeks the next frame steps: enough to keep up with `speed` weeks/s, 1 to MAX_WEEKS_PER_FRAME.

    Example:
        >>> weeks_for_frame(0.25, 4.0), weeks_for_frame(0.9, 4.0), weeks_for_frame(10.0, 4.0)
        (1, 3, 4)
    """
    return max(1, min(MAX_WEEKS_PER_FRAME, int(since_last_s * speed + 1e-9)))


class FrameShown:
    """The latest frame (run version) the browser reported painted; Play waits on it."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame = -1

    def report(self, frame: int) -> None:
        if not isinstance(frame, int) or isinstance(frame, bool):
            return  # it comes from the page: anything but a frame number is ignored
        with self._cond:
            if frame > self._frame:
                self._frame = frame
            self._cond.notify_all()

    def wait_for(self, frame: int, timeout: float, cancel: threading.Event) -> bool:
        """Wait until `frame` (or a later one) was painted; False on timeout or when cancelled."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._frame < frame:
                left = deadline - time.monotonic()
                if left <= 0 or cancel.is_set():
                    return False
                self._cond.wait(min(left, _POLL_S))
        return True


@solara.component_vue("shown.vue", vuetify=False)
def Shown(frame: int, event_shown: Callable[[int], None] | None = None) -> None:
    pass


class FrameGate:
    """One frame at a time, server-wide; a frame older than `patience` seconds no longer counts,
    but at most `most` frames run at once (slow frames on a busy server must not let everyone in).

    Example:
        >>> gate, cancel = FrameGate(patience=0.3), threading.Event()
        >>> token = gate.enter(cancel)
        >>> gate.busy()
        True
        >>> gate.leave(token)
        >>> gate.busy()
        False
    """

    def __init__(self, patience: float, most: int = 2) -> None:
        self.patience = patience
        self.most = most
        self._cond = threading.Condition()
        self._started: dict[int, float] = {}  # frame token -> when it entered (monotonic seconds)
        self._tokens = itertools.count()

    def _blocking(self, now: float) -> list[float]:
        return [t for t in self._started.values() if now - t < self.patience]

    def busy(self) -> bool:
        """True while a frame that entered less than `patience` seconds ago is still running."""
        with self._cond:
            return bool(self._blocking(time.monotonic()))

    def enter(self, cancel: threading.Event) -> int | None:
        """Wait for the turn; returns a token for `leave`, or None if `cancel` was set meanwhile."""
        with self._cond:
            while True:
                now = time.monotonic()
                blocking = self._blocking(now)
                if not blocking and len(self._started) < self.most:
                    token = next(self._tokens)
                    self._started[token] = now
                    return token
                if cancel.is_set():
                    return None
                wake = min(blocking) + self.patience - now if blocking else _POLL_S
                self._cond.wait(min(_POLL_S, wake))

    def leave(self, token: int) -> None:
        with self._cond:
            self._started.pop(token, None)
            self._cond.notify()


FRAMES = FrameGate(FRAME_PATIENCE_S, FRAMES_AT_ONCE)


@solara.component
def Player(ctl: Controller) -> None:
    """Steps the model in a thread while Play is on, at the chosen speed, paced as described above.

    Pause sets `ui.stop` first, and the step checks it under the session lock, so no step lands
    after Pause.
    """
    ui = ctl.ui
    session = ctl.session
    version = session.changed.value
    shown = solara.use_memo(FrameShown, [])
    Shown(frame=version, event_shown=shown.report)
    playing = ui.playing.value
    speed = max(0.5, float(ui.speed.value))
    generation = session.generation

    def loop(cancel: threading.Event) -> None:
        if not playing:
            return
        period = 1.0 / speed
        last = 0.0  # when the previous frame began (monotonic seconds); 0 before the first
        while not cancel.is_set():
            wait = period - (time.monotonic() - last)
            if wait > 0 and cancel.wait(wait):
                return
            token = FRAMES.enter(cancel)
            if token is None:
                return
            try:
                now = time.monotonic()
                weeks = weeks_for_frame(now - last, speed) if last else 1
                last = now
                stepped = session.step(generation, ui.stop, weeks=weeks)
                frame = session.version
            except StepError as exc:
                ui.set_playing(False)
                ui.message.set(str(exc))
                return
            finally:
                FRAMES.leave(token)
            if not stepped:
                if not ui.stop.is_set():
                    ui.set_playing(False)
                return
            shown.wait_for(frame, SHOWN_TIMEOUT_S, cancel)

    solara.use_thread(loop, dependencies=[playing, generation, speed], intrusive_cancel=False)
