// wasmbot for JavaScript plugins: the same shape as the Rust SDK.
//
// A plugin is `index.js` exporting `handle(event)`, and a `plugin.toml`:
//
//   import { reply } from 'wasmbot';
//   export function handle(event) {
//     return reply(`Hello, ${event.displayName}!`).button('Again', 'again');
//   }
//
// `handle` returns what to do: a `reply(...)`, `ask(...)`, `edit(...)`,
// `remove(...)`, `react(...)`, `typing()`, `notice(...)`, `alert(...)`,
// `sendFile(...)`, a plain string (sent as it is), an array of those, or
// nothing. Throwing `new Declined(text)` shows the text to the user as the
// plugin's error; so does a capability error left uncaught. A plugin granted
// `schedule` also exports `onEvent(happening)` for due jobs and webhooks.
//
// A plugin whose plugin.toml declares `[[tools]]` (for the assistant, Claude)
// exports `tool(call)`: `call.name` is the tool's, `call.input` its input
// parsed from JSON (an object, valid against the tool's `input_schema`), with
// `call.chatId`, `call.userId` (BigInts, 0n when an MCP client calls) and
// `call.correlationId`. It returns the text Claude reads, or
// `{ text, actions: [reply(...), ...] }` to show something in the chat as
// well; throwing `new Declined(text)` (or leaving a capability error uncaught)
// answers Claude with that text as an error:
//
//   export function tool(call) {
//     if (call.input.sides < 2) throw new Declined('A die has at least 2 sides.');
//     return String(1 + Math.floor(Math.random() * call.input.sides));
//   }
//
// Capabilities are objects, each needing its grant in plugin.toml:
// `import { state } from 'wasmbot'` (also log, secrets, audit, llm, health,
// cache, vectors, config, media, schedule, agent): the WIT interfaces as
// componentize-js binds them, with errors thrown as `CapabilityError`
// (`.capability`, `.kind`, `.detail`). A plugin granted `http` has `fetch`;
// `handle`, `onEvent` and `tool` may then be `async` and await it:
//
//   export async function handle(event) {
//     const response = await fetch(`${config.get('api_url')}/today`);
//     return `${response.status}: ${await response.text()}`;
//   }

import { granted } from 'wasmbot-granted';

export class Declined extends Error {}

export class CapabilityError extends Error {
  constructor(capability, kind, detail) {
    super(detail === undefined || detail === '' ? `${capability}: ${kind}` : `${capability}: ${kind}: ${detail}`);
    this.capability = capability;
    this.kind = kind;
    this.detail = detail;
  }
}

function raising(capability, fn) {
  return (...args) => {
    try {
      return fn(...args);
    } catch (error) {
      const payload = error && typeof error === 'object' && 'payload' in error ? error.payload : error;
      if (payload && typeof payload === 'object' && 'tag' in payload) {
        throw new CapabilityError(capability, payload.tag, payload.val);
      }
      throw new CapabilityError(capability, typeof payload === 'string' ? payload : 'error', undefined);
    }
  };
}

function capability(name) {
  const raw = granted[name];
  if (raw === undefined) {
    // Not granted: the interface is not even imported. Say so on first use.
    return new Proxy({}, {
      get(_, property) {
        if (typeof property !== 'string') return undefined;
        throw new Error(`\`${name}.${property}\` needs the \`${name}\` capability: add "${name}" to \`capabilities\` in plugin.toml`);
      },
    });
  }
  const wrapped = {};
  for (const [key, value] of Object.entries(raw)) {
    wrapped[key] = typeof value === 'function' ? raising(name, value) : value;
  }
  return wrapped;
}

export const state = capability('state');
export const secrets = capability('secrets');
export const audit = capability('audit');
export const llm = capability('llm');
export const health = capability('health');
export const cache = capability('cache');
export const vectors = capability('vectors');
export const config = capability('config');
export const media = capability('media');
export const schedule = capability('schedule');
export const agent = capability('agent');
export const log = (() => {
  const raw = capability('log');
  const at = (level) => (message, fields = {}) =>
    raw.log(level, String(message), Object.entries(fields).map(([key, value]) => ({ key, value: String(value) })));
  if (granted.log === undefined) return raw;
  return { ...raw, trace: at('trace'), debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
})();

// ---- actions ----

const FORMATS = ['plain', 'markdown', 'html'];

function checkFormat(format) {
  if (!FORMATS.includes(format)) throw new TypeError(`format must be one of ${FORMATS.join(', ')}, not ${JSON.stringify(format)}`);
  return format;
}

/** The n-th message sent by this same list of actions (from 0). */
export const sent = (n) => ({ tag: 'sent', val: n });
/** The latest message this plugin sent in this chat under `name`. */
export const named = (name) => ({ tag: 'named', val: name });
const ref = (message) => (typeof message === 'number' || typeof message === 'bigint' ? { tag: 'id', val: BigInt(message) } : message);

export class Reply {
  constructor(text, format = 'plain') {
    this.text = String(text);
    this.format = checkFormat(format);
    this.keyboard = [];
    this.replyRef = undefined;
    this.name = undefined;
  }
  button(label, data) {
    if (this.keyboard.length === 0) this.keyboard.push([]);
    this.keyboard[this.keyboard.length - 1].push({ label: String(label), data: String(data) });
    return this;
  }
  /** Buttons after this go on a new row. */
  row() {
    if (this.keyboard.length && this.keyboard[this.keyboard.length - 1].length) this.keyboard.push([]);
    return this;
  }
  replyTo(message) {
    this.replyRef = ref(message);
    return this;
  }
  named(name) {
    this.name = name;
    return this;
  }
  outgoing() {
    return {
      text: this.text,
      format: this.format,
      keyboard: this.keyboard.filter((row) => row.length),
      replyTo: this.replyRef,
      name: this.name,
    };
  }
  toAction() {
    return { tag: 'send', val: this.outgoing() };
  }
}

/** A question: the chat's next message or press comes back with `event.promptState()` set. */
export class Ask extends Reply {
  constructor(text, format = 'plain') {
    super(text, format);
    this.saved = 'null';
    this.timeoutSecs = 600;
  }
  state(value) {
    this.saved = JSON.stringify(value);
    return this;
  }
  timeout(seconds) {
    this.timeoutSecs = seconds;
    return this;
  }
  toAction() {
    return { tag: 'ask', val: { message: this.outgoing(), state: this.saved, timeoutSecs: this.timeoutSecs } };
  }
}

export const reply = (text, format) => new Reply(text, format);
export const ask = (text, format) => new Ask(text, format);

/** Changes a message's text (undefined keeps it) and buttons (a `reply(...)` holding them, or none). */
export function edit(message, text, { format = 'plain', buttons } = {}) {
  return {
    tag: 'edit',
    val: {
      message: ref(message),
      text: text === undefined || text === null ? undefined : String(text),
      format: checkFormat(format),
      keyboard: buttons ? buttons.keyboard.filter((row) => row.length) : [],
    },
  };
}
export const remove = (message) => ({ tag: 'delete', val: ref(message) });
export const react = (message, emoji) => ({ tag: 'react', val: { message: ref(message), emoji } });
export const typing = () => ({ tag: 'typing' });
/** A short notice answering the button press this event is. */
export const notice = (text) => ({ tag: 'answer', val: { text, alert: false } });
/** An alert the user must dismiss, answering the button press this event is. */
export const alert = (text) => ({ tag: 'answer', val: { text, alert: true } });
/** Uploads `data` (a Uint8Array or a string) as `name`: kind 'document' or 'photo'. */
export function sendFile(name, data, { kind = 'document', caption = '', format = 'plain', replyTo } = {}) {
  if (kind !== 'document' && kind !== 'photo') throw new TypeError(`kind must be 'document' or 'photo', not ${JSON.stringify(kind)}`);
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  return { tag: 'send-file', val: { kind, name, data: bytes, caption, format: checkFormat(format), replyTo: replyTo === undefined ? undefined : ref(replyTo) } };
}

function toActions(result) {
  if (result === undefined || result === null) return [];
  if (Array.isArray(result)) return result.flatMap(toActions);
  if (typeof result === 'string') return [new Reply(result).toAction()];
  if (result instanceof Reply) return [result.toAction()];
  return [result];
}

// ---- events ----

/** The WIT event, plus `command`, `press`, `textInput`, `promptState()`, `messageRef`. */
export class Event {
  constructor(raw) {
    Object.assign(this, raw);
    this.raw = raw;
  }
  get command() {
    return this.raw.kind.tag === 'command' ? this.raw.kind.val : undefined;
  }
  get press() {
    return this.raw.kind.tag === 'button' ? this.raw.kind.val : undefined;
  }
  get textInput() {
    return this.raw.kind.tag === 'text' ? this.raw.kind.val : undefined;
  }
  /** The value saved with `ask(...).state(value)` when this event answers it. */
  promptState() {
    return this.raw.prompt === undefined ? undefined : JSON.parse(this.raw.prompt);
  }
  get messageRef() {
    const press = this.press;
    return { tag: 'id', val: press ? press.messageId : this.raw.messageId };
  }
  attachment(kind) {
    return this.raw.attachments.find((attachment) => attachment.kind === kind);
  }
}

// A thrown `Declined` or capability error is the world's `Err(text)`, shown
// to the user (or read by Claude); anything else is a crash.
function failed(error) {
  if (error instanceof Declined || error instanceof CapabilityError) throw error.message;
  throw error;
}

// `fn` may be async (it awaits `fetch`, say): componentize-js then runs the
// event loop until the promise it is handed settles.
function settle(fn, argument, convert) {
  let result;
  try {
    result = fn(argument);
  } catch (error) {
    failed(error);
  }
  if (result !== null && typeof result === 'object' && typeof result.then === 'function') {
    return result.then(convert, failed);
  }
  return convert(result);
}

function run(fn, argument) {
  return settle(fn, argument, toActions);
}

/** Used by the generated entry module: the world's `handle`. */
export function runHandle(plugin, event) {
  if (typeof plugin.handle !== 'function') throw new Error('index.js must export `function handle(event)`');
  return run(plugin.handle, new Event(event));
}

/** Used by the generated entry module: the world's `on-event`. */
export function runHappening(plugin, happening) {
  if (typeof plugin.onEvent !== 'function') throw new Error('a plugin granted `schedule` must export `function onEvent(happening)`');
  return run(plugin.onEvent, happening);
}

// ---- tools ----

/** A tool call as `tool(call)` gets it: the WIT record with `input` parsed. */
export class ToolCall {
  constructor(raw) {
    this.raw = raw;
    this.name = raw.name;
    this.input = raw.input ? JSON.parse(raw.input) : {};
    this.correlationId = raw.correlationId;
    this.chatId = raw.chatId;
    this.userId = raw.userId;
  }
}

function toToolOutput(result) {
  if (typeof result === 'string') return { text: result, actions: [] };
  if (result !== null && typeof result === 'object' && 'text' in result) {
    return { text: String(result.text), actions: toActions(result.actions) };
  }
  throw new TypeError(`\`tool(call)\` must return a string or { text, actions }, not ${result === null ? 'null' : typeof result}`);
}

/** Used by the generated entry module: the plugin exports `tool` when its manifest declares tools. */
export function checkTools(plugin, declared) {
  if (typeof plugin.tool !== 'function') {
    throw new Error(`plugin.toml declares [[tools]] (${declared.join(', ')}): index.js must export \`function tool(call)\``);
  }
}

/** Used by the generated entry module: the `tools` interface's `call`. */
export function runTool(plugin, call) {
  return settle((raw) => plugin.tool(new ToolCall(raw)), call, toToolOutput);
}
