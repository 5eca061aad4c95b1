"""Each capability is its WIT interface as componentize-py generated it, with
the interface's error variant raised as a `CapabilityError`."""

import functools
import importlib
import types

from componentize_py_types import Err

# The wasmbot interfaces a manifest may grant (`files` and `http` are WASI).
CAPABILITIES = (
    "log",
    "state",
    "secrets",
    "audit",
    "llm",
    "health",
    "cache",
    "vectors",
    "config",
    "media",
    "schedule",
    "agent",
)


class CapabilityError(Exception):
    """A capability call failed: `kind` is the WIT error case (e.g.
    "over-budget", "not-found"), `detail` what the host said."""

    def __init__(self, capability, kind, detail):
        self.capability = capability
        self.kind = kind
        self.detail = detail
        text = f"{capability}: {kind}"
        if detail not in (None, ""):
            text += f": {detail}"
        super().__init__(text)


def _kind_of(value):
    # A variant case is a class named `StateError_OverBudget`; an enum case
    # has a name (`NOT_FOUND`).
    name = getattr(value, "name", None)
    if name is None:
        name = type(value).__name__.split("_", 1)[-1]
        name = "".join("-" + c.lower() if c.isupper() else c for c in name).lstrip("-")
    return name.lower().replace("_", "-")


def error_of(capability, value):
    """The `CapabilityError` for a WIT error value (a variant case or an enum)."""
    return CapabilityError(capability, _kind_of(value), getattr(value, "value", None))


def _raising(capability, function):
    @functools.wraps(function)
    def call(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except Err as error:
            value = error.value
            if isinstance(value, str):
                raise CapabilityError(capability, "error", value) from None
            raise error_of(capability, value) from None

    return call


# What the manifest grants, once the world is made (`_run.world`): an
# interface first imported while a call runs is then told apart from one
# not granted.
GRANTED = None


def capability(name):
    """The interface `name` as a module, or an ImportError saying which grant it needs."""
    try:
        raw = importlib.import_module(f"wit_world.imports.{name}")
    except ImportError:
        if GRANTED is not None and name in GRANTED:
            raise ImportError(
                f"`wasmbot.{name}` must be imported when app.py is loaded (at the top of the "
                "file), not while a call runs: the component keeps only what was imported "
                "when it was built"
            ) from None
        raise ImportError(
            f"`wasmbot.{name}` needs the `{name}` capability: add \"{name}\" to "
            f"`capabilities` in plugin.toml"
        ) from None
    module = types.ModuleType(f"wasmbot.{name}", raw.__doc__)
    for attribute, value in vars(raw).items():
        if attribute.startswith("_"):
            continue
        if isinstance(value, types.FunctionType) and value.__module__ == raw.__name__:
            value = _raising(name, value)
        setattr(module, attribute, value)
    extra = _EXTRAS.get(name)
    if extra:
        extra(module, raw)
    return module


def _log_extras(module, raw):
    # log.info("text", key="value") beside the generated log.log(level, text, fields).
    def at(level):
        def write(message, **fields):
            raw.log(level, str(message), [raw.Field(key=k, value=str(v)) for k, v in fields.items()])

        return write

    for level in raw.Level:
        setattr(module, level.name.lower(), at(level))


_EXTRAS = {"log": _log_extras}
