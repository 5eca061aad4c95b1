"""Actions a handler returns, built the way the Rust SDK builds them:
`reply("text").button("Yes", "yes").row().button("No", "no")`."""

import json

from wit_world.imports import events as wit

_FORMATS = {"plain": wit.Format.PLAIN, "markdown": wit.Format.MARKDOWN, "html": wit.Format.HTML}


def _format(name):
    try:
        return _FORMATS[name]
    except KeyError:
        raise ValueError(f"format must be one of {', '.join(_FORMATS)}, not {name!r}") from None


def sent(n):
    """The n-th message sent by this same list of actions (from 0)."""
    return wit.MessageRef_Sent(n)


def named(name):
    """The latest message this plugin sent in this chat under `name`."""
    return wit.MessageRef_Named(name)


def _ref(message):
    if isinstance(message, int):
        return wit.MessageRef_Id(message)
    return message


class Reply:
    """A message to send; `.button(label, data)`, `.row()`, `.reply_to(ref)`,
    `.named(name)` add to it."""

    def __init__(self, text, format="plain"):
        self.text = str(text)
        self.format = _format(format)
        self.keyboard = []
        self.reply_ref = None
        self.name = None

    def button(self, label, data):
        if not self.keyboard:
            self.keyboard.append([])
        self.keyboard[-1].append(wit.Button(label=str(label), data=str(data)))
        return self

    def row(self):
        """Buttons after this go on a new row."""
        if self.keyboard and self.keyboard[-1]:
            self.keyboard.append([])
        return self

    def reply_to(self, message):
        self.reply_ref = _ref(message)
        return self

    def named(self, name):
        self.name = name
        return self

    def _outgoing(self):
        keyboard = [row for row in self.keyboard if row]
        return wit.Outgoing(
            text=self.text, format=self.format, keyboard=keyboard, reply_to=self.reply_ref, name=self.name
        )

    def to_action(self):
        return wit.Action_Send(self._outgoing())


class Ask(Reply):
    """A question: the chat's next message or press comes back to this plugin
    with `event.prompt_state()` set to `.state(value)`."""

    def __init__(self, text, format="plain"):
        super().__init__(text, format)
        self.saved = "null"
        self.timeout_secs = 600

    def state(self, value):
        self.saved = json.dumps(value)
        return self

    def timeout(self, seconds):
        self.timeout_secs = int(seconds)
        return self

    def to_action(self):
        return wit.Action_Ask(
            wit.Question(message=self._outgoing(), state=self.saved, timeout_secs=self.timeout_secs)
        )


def reply(text, format="plain"):
    return Reply(text, format)


def ask(text, format="plain"):
    return Ask(text, format)


def edit(message, text=None, format="plain", buttons=None):
    """Changes a message's text (None keeps it) and its buttons: `buttons` is
    a `reply(...)` whose keyboard to use, or None to remove them."""
    keyboard = [row for row in buttons.keyboard if row] if buttons is not None else []
    return wit.Action_Edit(wit.Edit(message=_ref(message), text=text, format=_format(format), keyboard=keyboard))


def delete(message):
    return wit.Action_Delete(_ref(message))


def react(message, emoji):
    return wit.Action_React(wit.Reaction(message=_ref(message), emoji=emoji))


def typing():
    return wit.Action_Typing()


def notice(text):
    """A short notice answering the button press this event is."""
    return wit.Action_Answer(wit.Notice(text=text, alert=False))


def alert(text):
    """An alert the user must dismiss, answering the button press this event is."""
    return wit.Action_Answer(wit.Notice(text=text, alert=True))


def send_file(name, data, kind="document", caption="", format="plain", reply_to=None):
    """Uploads `data` (bytes) as `name`: kind "document" or "photo"."""
    kinds = {"document": wit.FileKind.DOCUMENT, "photo": wit.FileKind.PHOTO}
    if kind not in kinds:
        raise ValueError(f"kind must be \"document\" or \"photo\", not {kind!r}")
    return wit.Action_SendFile(
        wit.OutgoingFile(
            kind=kinds[kind],
            name=name,
            data=bytes(data),
            caption=caption,
            format=_format(format),
            reply_to=_ref(reply_to),
        )
    )


def to_actions(result):
    """What a handler returned, as the WIT's list of actions."""
    if result is None:
        return []
    if isinstance(result, (list, tuple)):
        actions = []
        for item in result:
            actions.extend(to_actions(item))
        return actions
    if isinstance(result, str):
        return [Reply(result).to_action()]
    if isinstance(result, Reply):
        return [result.to_action()]
    return [result]
