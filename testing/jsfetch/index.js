// Test plugin: a JavaScript handler that awaits `fetch` under the `http`
// grant. `/jsfetch PATH` answers `STATUS BODY` from the allowed server;
// `/jsfetch_away URL` tries a URL the manifest does not list.
import { Declined, config } from 'wasmbot';

export async function handle(event) {
  const { name, args } = event.command;
  const url = name === 'jsfetch' ? `${config.get('base_url')}/${args}` : args;
  let response;
  try {
    response = await fetch(url, { headers: { 'x-from': 'jsfetch' } });
  } catch (error) {
    throw new Declined(`fetch refused: ${error.message ?? error}`);
  }
  return `${response.status} ${await response.text()}`;
}
