"""Test plugin: a Python handler making requests with `wasmbot.http` under
the `http` grant. `/pyfetch PATH` answers `STATUS BODY` from the allowed
server, `/pypost TEXT` posts JSON to its /echo, `/pyfetch_away URL` tries a
URL the manifest does not list."""

from wasmbot import CapabilityError, Declined, config, http


def handle(event):
    command = event.command
    base = config.get("base_url")
    try:
        if command.name == "pyfetch":
            response = http.get(f"{base}/{command.args}", {"x-from": "pyfetch"})
        elif command.name == "pypost":
            response = http.post_json(f"{base}/echo", {"text": command.args})
        else:
            response = http.get(command.args)
    except CapabilityError as error:
        raise Declined(f"request refused: {error.kind}: {error.detail}")
    return f"{response.status} {response.text}"
