"""Tools the assistant (Claude) may call: the call a plugin's `tool(call)` is
given, and what it may answer besides a plain string."""

import json


class ToolCall:
    """A call of one of the tools plugin.toml declares: `name`, `input` (the
    JSON input, parsed: a dict valid against the tool's schema),
    `correlation_id`, `chat_id` and `user_id` (both 0 when an MCP client
    calls), and `raw` (the WIT record)."""

    def __init__(self, raw):
        self.raw = raw
        self.name = raw.name
        self.input = json.loads(raw.input) if raw.input else {}
        self.correlation_id = raw.correlation_id
        self.chat_id = raw.chat_id
        self.user_id = raw.user_id

    def __repr__(self):
        return f"ToolCall(name={self.name!r}, input={self.input!r})"


class ToolOutput:
    """What a tool answers: `text` is what Claude reads; `actions` (what a
    handler may return: `reply(...)`, `send_file(...)`, a list of them) are
    shown in the chat too, and dropped where there is none (an MCP client)."""

    def __init__(self, text, actions=None):
        self.text = str(text)
        self.actions = actions

    def __repr__(self):
        return f"ToolOutput({self.text!r}, actions={self.actions!r})"
