"""/convert: units of length, mass, volume, speed and temperature.

`/convert 5 km to mi`, `/convert 70 f c`, or `/convert 12 kg` (buttons
offer what kilograms convert to); and the same as the assistant's tool
`convert`. A Python plugin: a handler, a tool and a manifest.
"""

from wasmbot import Declined, log, notice, reply

# Unit -> (dimension, factor to the dimension's base unit). Temperatures
# are not proportional and are handled on their own.
UNITS = {
    "mm": ("length", 0.001), "cm": ("length", 0.01), "m": ("length", 1.0),
    "km": ("length", 1000.0), "in": ("length", 0.0254), "ft": ("length", 0.3048),
    "yd": ("length", 0.9144), "mi": ("length", 1609.344),
    "g": ("mass", 0.001), "kg": ("mass", 1.0), "oz": ("mass", 0.028349523125),
    "lb": ("mass", 0.45359237), "st": ("mass", 6.35029318),
    "ml": ("volume", 0.001), "l": ("volume", 1.0), "cup": ("volume", 0.2365882365),
    "pt": ("volume", 0.473176473), "gal": ("volume", 3.785411784),
    "kmh": ("speed", 1 / 3.6), "ms": ("speed", 1.0), "mph": ("speed", 0.44704), "kn": ("speed", 0.514444),
    "c": ("temperature", None), "f": ("temperature", None), "k": ("temperature", None),
}
ALIASES = {
    "km/h": "kmh", "m/s": "ms", "miles": "mi", "mile": "mi", "meters": "m", "metres": "m",
    "feet": "ft", "foot": "ft", "inches": "in", "inch": "in", "pounds": "lb", "pound": "lb",
    "lbs": "lb", "liters": "l", "litres": "l", "°c": "c", "°f": "f", "celsius": "c",
    "fahrenheit": "f", "kelvin": "k", "knots": "kn", "kg.": "kg",
}
USAGE = "Try /convert 5 km to mi, /convert 70 f c or /convert 12 kg."


def unit(word, hint=USAGE):
    word = word.lower()
    word = ALIASES.get(word, word)
    if word not in UNITS:
        raise Declined(f"I don't know the unit {word!r}. {hint}")
    return word


def to_celsius(value, frm):
    return {"c": value, "f": (value - 32) * 5 / 9, "k": value - 273.15}[frm]


def from_celsius(value, to):
    return {"c": value, "f": value * 9 / 5 + 32, "k": value + 273.15}[to]


def convert(value, frm, to):
    dimension, factor = UNITS[frm]
    other, to_factor = UNITS[to]
    if dimension != other:
        raise Declined(f"{frm} is a {dimension} and {to} a {other}: they don't convert.")
    if dimension == "temperature":
        return from_celsius(to_celsius(value, frm), to)
    return value * factor / to_factor


def show(value):
    return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.3e}"


def parse(args):
    words = [w for w in args.replace(",", ".").split() if w.lower() != "to"]
    if not words:
        raise Declined(USAGE)
    # "5km" as well as "5 km".
    number = words[0].rstrip("abcdefghijklmnopqrstuvwxyz/°.")
    rest = words[0][len(number):]
    if rest:
        words.insert(1, rest)
    try:
        value = float(number)
    except ValueError:
        raise Declined(f"{words[0]!r} is not a number. {USAGE}") from None
    units = [unit(w) for w in words[1:3]]
    return value, units


def handle(event):
    press = event.press
    if press is not None:
        value, frm, to = press.data.split(" ")
        result = convert(float(value), frm, to)
        return [reply(f"{value} {frm} = {show(result)} {to}"), notice(f"{show(result)} {to}")]
    value, units = parse(event.command.args if event.command else event.text)
    if len(units) == 2:
        frm, to = units
        result = convert(value, frm, to)
        log.info("converted", frm=frm, to=to)
        return f"{show(value)} {frm} = {show(result)} {to}"
    if len(units) == 1:
        frm = units[0]
        dimension = UNITS[frm][0]
        choices = [u for u, (d, _) in UNITS.items() if d == dimension and u != frm]
        answer = reply(f"{show(value)} {frm} in…")
        for i, to in enumerate(choices):
            if i and i % 4 == 0:
                answer.row()
            answer.button(to, f"{show(value)} {frm} {to}")
        return answer
    raise Declined(USAGE)


def tool(call):
    hint = f"Known units: {', '.join(UNITS)}."
    value = call.input["value"]
    frm, to = unit(call.input["from"], hint), unit(call.input["to"], hint)
    return f"{show(value)} {frm} = {show(convert(value, frm, to))} {to}"
