// /roll and /poll: dice with a "roll again" button, and polls whose votes
// are kept with `state`; and the assistant's tool `roll`. A JavaScript
// plugin: a handler, a tool and a manifest.
import { Declined, edit, notice, reply, state } from 'wasmbot';

const MAX_DICE = 100;
const MAX_OPTIONS = 10;

function randomBelow(n) {
  const buffer = new Uint32Array(1);
  crypto.getRandomValues(buffer);
  return buffer[0] % n;
}

// "2d6+1" -> { count: 2, sides: 6, bonus: 1 }
function parseDice(spec) {
  const match = /^(\d*)d(\d+)([+-]\d+)?$/i.exec(spec.replace(/\s+/g, '') || 'd6');
  if (!match) throw new Declined(`"${spec}" is not a roll. Try /roll 2d6 or /roll d20+3.`);
  const count = match[1] ? Number(match[1]) : 1;
  const sides = Number(match[2]);
  if (count < 1 || count > MAX_DICE) throw new Declined(`Roll between 1 and ${MAX_DICE} dice.`);
  if (sides < 2 || sides > 1000) throw new Declined('A die has between 2 and 1000 sides.');
  return { count, sides, bonus: match[3] ? Number(match[3]) : 0 };
}

// "2d6+1" -> "9 (3 + 5 + 1)"
function rolled(spec) {
  const { count, sides, bonus } = parseDice(spec);
  const rolls = Array.from({ length: count }, () => randomBelow(sides) + 1);
  const total = rolls.reduce((a, b) => a + b, 0) + bonus;
  const shown = count > 1 || bonus ? ` (${rolls.join(' + ')}${bonus ? (bonus > 0 ? ` + ${bonus}` : ` - ${-bonus}`) : ''})` : '';
  return `${total}${shown}`;
}

function roll(spec) {
  return reply(`🎲 ${spec || 'd6'}: ${rolled(spec)}`).button('Roll again', `roll:${spec}`);
}

function pollKey(chatId, id) {
  return `poll:${chatId}:${id}`;
}

function pollText(poll) {
  const counts = poll.options.map(() => 0);
  for (const choice of Object.values(poll.votes)) counts[choice] += 1;
  const lines = poll.options.map((option, i) => `${option}: ${counts[i]}`);
  return `📊 ${poll.question}\n${lines.join('\n')}`;
}

function pollButtons(poll, id) {
  const buttons = reply('');
  poll.options.forEach((option, i) => {
    if (i && i % 3 === 0) buttons.row();
    buttons.button(option, `vote:${id}:${i}`);
  });
  return buttons;
}

function newPoll(event, args) {
  const [question, ...options] = args.split('|').map((part) => part.trim()).filter(Boolean);
  if (!question || options.length < 2) throw new Declined('Give a question and at least two options: /poll Lunch? | pizza | sushi');
  if (options.length > MAX_OPTIONS) throw new Declined(`At most ${MAX_OPTIONS} options.`);
  const id = String(event.messageId);
  const poll = { question, options, votes: {} };
  state.set(pollKey(event.chatId, id), JSON.stringify(poll));
  const message = reply(pollText(poll));
  message.keyboard = pollButtons(poll, id).keyboard;
  return message;
}

function vote(event, id, choice) {
  const key = pollKey(event.chatId, id);
  const saved = state.get(key);
  if (saved === undefined) return notice('This poll is closed.');
  const poll = JSON.parse(saved);
  if (!(choice in poll.options)) return notice('No such option.');
  poll.votes[String(event.userId)] = Number(choice);
  state.set(key, JSON.stringify(poll));
  return [
    edit(event.press.messageId, pollText(poll), { buttons: pollButtons(poll, id) }),
    notice(`You voted for ${poll.options[choice]}.`),
  ];
}

export function handle(event) {
  const press = event.press;
  if (press) {
    const [kind, ...rest] = press.data.split(':');
    if (kind === 'roll') return [roll(rest.join(':')), notice('Rolled')];
    if (kind === 'vote') return vote(event, rest[0], rest[1]);
    return notice('That button is from an older version.');
  }
  const command = event.command;
  if (command && command.name === 'poll') return newPoll(event, command.args);
  return roll(command ? command.args : '');
}

export function tool(call) {
  const spec = call.input.dice;
  return `${spec || 'd6'}: ${rolled(spec)}`;
}
