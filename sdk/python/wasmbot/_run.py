"""The world's exports, calling the plugin's `handle` (and `on_event`, `tool`)."""

from componentize_py_types import Err

from . import Declined, _capabilities
from ._actions import to_actions
from ._capabilities import CapabilityError
from ._event import Event
from ._tools import ToolCall, ToolOutput


def _run(function, argument):
    try:
        return to_actions(function(argument))
    except (Declined, CapabilityError) as error:
        raise Err(str(error)) from None


def world(app, granted):
    """The class componentize-py exports, for the plugin module `app`."""
    _capabilities.GRANTED = tuple(granted)
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


def tool_output(result, output_type):
    """What `tool(call)` returned, as the WIT's `tool-output` (`output_type`)."""
    if isinstance(result, str):
        return output_type(text=result, actions=[])
    if isinstance(result, ToolOutput):
        return output_type(text=result.text, actions=to_actions(result.actions))
    raise TypeError(f"`tool(call)` must return a str or a wasmbot.ToolOutput, not {type(result).__name__}")


def run_tool(function, raw, output_type):
    """Calls `function` with the WIT `tool-call` `raw`; a `Declined` or a
    capability error becomes the `Err(text)` Claude reads."""
    try:
        return tool_output(function(ToolCall(raw)), output_type)
    except (Declined, CapabilityError) as error:
        raise Err(str(error)) from None


def tools(app, declared):
    """The class componentize-py exports for the `tools` interface, for the
    plugin module `app` whose manifest declares the tools `declared`."""
    tool = getattr(app, "tool", None)
    if not callable(tool):
        names = ", ".join(declared)
        raise TypeError(f"plugin.toml declares [[tools]] ({names}): app.py must define `def tool(call):`")
    # Generated only for a world that exports `tools`.
    from wit_world.exports.tools import ToolOutput as WitToolOutput

    class Tools:
        def call(self, call):
            return run_tool(tool, call, WitToolOutput)

    return Tools
