"""The event a handler is given: the WIT record, with the questions a
handler asks of it answered directly."""

import json

from wit_world.imports import events as wit


class Event:
    """Every field of the WIT `event` (`chat_id`, `user_id`, `username`,
    `display_name`, `message_id`, `text`, `attachments`, `prompt`, ...) plus
    `command`, `press`, `text_input`, `prompt_state()` and `message_ref`."""

    def __init__(self, raw):
        self.raw = raw

    def __getattr__(self, name):
        return getattr(self.raw, name)

    @property
    def command(self):
        """The command (`.name`, `.args`) when this is one, else None."""
        kind = self.raw.kind
        return kind.value if isinstance(kind, wit.EventKind_Command) else None

    @property
    def press(self):
        """The button press (`.data`, `.message_id`) when this is one, else None."""
        kind = self.raw.kind
        return kind.value if isinstance(kind, wit.EventKind_Button) else None

    @property
    def text_input(self):
        """The text when this is plain text (not a command, not a press), else None."""
        kind = self.raw.kind
        return kind.value if isinstance(kind, wit.EventKind_Text) else None

    @property
    def chat_type(self):
        """"private", "group" or "channel"."""
        return self.raw.chat_type.name.lower()

    def prompt_state(self):
        """The value saved with `ask(...).state(value)` when this event answers
        that question, else None."""
        if self.raw.prompt is None:
            return None
        return json.loads(self.raw.prompt)

    @property
    def message_ref(self):
        """The user's message (a press: the message the button is on)."""
        press = self.press
        return wit.MessageRef_Id(press.message_id if press else self.raw.message_id)

    def attachment(self, kind):
        """The first attachment of `kind` ("photo", "voice", "document", ...), else None."""
        for attachment in self.raw.attachments:
            if attachment.kind.name.lower().replace("_", "-") == kind:
                return attachment
        return None

    def __repr__(self):
        return f"Event({self.raw!r})"
