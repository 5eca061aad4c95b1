"""Test plugin: `/pyreach` makes one call of every capability from Python
and answers a line each, `NAME: ok` or `NAME: KIND` (the error the host
gave): what a Python plugin can reach, checked against the host's table by
tests/languages.rs."""

import json

from wasmbot import (
    CapabilityError,
    agent,
    audit,
    cache,
    config,
    health,
    http,
    llm,
    log,
    media,
    schedule,
    secrets,
    state,
    vectors,
)


def _probe(name, call):
    try:
        call()
        return f"{name}: ok"
    except CapabilityError as error:
        return f"{name}: {error.kind}"
    except Exception as error:  # noqa: BLE001 - the test shows what broke
        return f"{name}: failed {type(error).__name__}: {error}"


def _state():
    state.set("probe", json.dumps("kept"))
    assert state.get("probe") == json.dumps("kept")


def _llm_request():
    return llm.CompletionRequest(
        system=None, messages=[llm.ChatMessage(role=llm.Role.USER, content="hi")], max_tokens=None
    )


def _files():
    with open("/data/probe.txt", "w") as file:
        file.write("kept")
    with open("/data/probe.txt") as file:
        assert file.read() == "kept"


def handle(event):
    probes = {
        "log": lambda: log.info("probe", capability="log"),
        "state": _state,
        "secrets": lambda: secrets.get("probe"),
        "audit": lambda: audit.record_action("probe", audit.Status.OK, "{}"),
        "llm": lambda: llm.complete(_llm_request()),
        "agent": lambda: agent.run(agent.Turn(system=None, messages=[], max_tokens=None)),
        "health": health.latest,
        "cache": lambda: cache.set("probe", "kept", None),
        "vectors": vectors.list_collections,
        "config": lambda: config.get("greeting") == "hello" or 1 / 0,
        "media": lambda: media.fetch("no-such-file"),
        "schedule": schedule.list,
        "http": lambda: http.get("http://127.0.0.1:9/elsewhere"),
        "files": _files,
    }
    return "\n".join(_probe(name, call) for name, call in probes.items())


def on_event(happening):
    return None
