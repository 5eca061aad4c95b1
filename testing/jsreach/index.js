// Test plugin: `/jsreach` makes one call of every capability from
// JavaScript and answers a line each, `NAME: ok` or `NAME: KIND` (the error
// the host gave): what a JavaScript plugin can reach, checked against the
// host's table by tests/languages.rs. `files` has no API here.
import {
  CapabilityError, agent, audit, cache, config, health, llm, log, media, schedule, secrets, state, vectors,
} from 'wasmbot';

async function probe(name, call) {
  try {
    await call();
    return `${name}: ok`;
  } catch (error) {
    if (error instanceof CapabilityError) return `${name}: ${error.kind}`;
    return `${name}: failed ${error}`;
  }
}

const probes = {
  log: () => log.info('probe', { capability: 'log' }),
  state: () => {
    state.set('probe', JSON.stringify('kept'));
    if (state.get('probe') !== JSON.stringify('kept')) throw new Error('state lost the value');
  },
  secrets: () => secrets.get('probe'),
  audit: () => audit.recordAction('probe', 'ok', '{}'),
  llm: () => llm.complete({ system: undefined, messages: [{ role: 'user', content: 'hi' }], maxTokens: undefined }),
  agent: () => agent.run({ system: undefined, messages: [], maxTokens: undefined }),
  health: () => health.latest(),
  cache: () => cache.set('probe', 'kept', undefined),
  vectors: () => vectors.listCollections(),
  config: () => {
    if (config.get('greeting') !== 'hello') throw new Error('config lost the setting');
  },
  media: () => media.fetch('no-such-file'),
  schedule: () => schedule.list(),
  // The host refuses the private address; fetch says only "NetworkError".
  http: async () => {
    let response;
    try {
      response = await fetch('http://127.0.0.1:9/elsewhere');
    } catch (error) {
      throw new CapabilityError('http', 'refused', String(error));
    }
    throw new Error(`fetch answered ${response.status}`);
  },
};

export async function handle() {
  const lines = [];
  for (const [name, call] of Object.entries(probes)) lines.push(await probe(name, call));
  return lines.join('\n');
}

export function onEvent() {
  return [];
}
