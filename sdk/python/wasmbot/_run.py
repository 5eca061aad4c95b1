"""The world's exports, calling the plugin's `handle` (and `on_event`)."""

from componentize_py_types import Err

from . import Declined
from ._actions import to_actions
from ._capabilities import CapabilityError
from ._event import Event


def _run(function, argument):
    try:
        return to_actions(function(argument))
    except (Declined, CapabilityError) as error:
        raise Err(str(error)) from None


def world(app, granted):
    """The class componentize-py exports, for the plugin module `app`."""
    handle = getattr(app, "handle", None)
    if not callable(handle):
        raise TypeError("app.py must define `def handle(event):`")
    on_event = getattr(app, "on_event", None)
    if "schedule" in granted and not callable(on_event):
        raise TypeError("a plugin granted `schedule` must define `def on_event(happening):` in app.py")

    class WitWorld:
        def handle(self, event):
            return _run(handle, Event(event))

        def on_event(self, happening):
            return _run(on_event, happening)

    return WitWorld
