/**
 * Every command's --help tells the truth about its flags: each flag the command parses is in its
 * help, and each flag its usage lines show is one it parses. Run in this process: with --help the
 * commands only parse, so asking each one about each flag costs a parse, not a `cairn` process.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_DATADIR, DEFAULT_PORTS, UsageError } from '../cli/args.ts';
import { createOut, type Out } from '../cli/output.ts';
import { lightRpcHandlers } from '../node/light/rpc.ts';
import { REPO } from './helpers/cli.ts';
import { CLI_COMMANDS, type Command } from './helpers/cli-commands.ts';

const COMMANDS = CLI_COMMANDS;

const FLAG = /--([a-z][a-z0-9-]*)/g;
const flagsIn = (text: string): Set<string> => new Set([...text.matchAll(FLAG)].map((m) => m[1]!));

/** Every option name any command could parse: in any help text, or in an options table in cli/. */
function candidateFlags(helps: readonly string[]): Set<string> {
  const names = new Set(helps.flatMap((h) => [...flagsIn(h)]));
  for (const file of ['args', 'cmd-chain', 'cmd-devnet', 'cmd-generate', 'cmd-genesis', 'cmd-inspect', 'cmd-keys', 'cmd-light', 'cmd-node', 'cmd-proof', 'cmd-send', 'cmd-snapshot']) {
    const text = readFileSync(join(REPO, 'cli', `${file}.ts`), 'utf8');
    for (const m of text.matchAll(/['"]?([a-z][a-z0-9-]*)['"]?: \{ type: '(?:string|boolean)'/g)) names.add(m[1]!);
  }
  names.delete('help');
  return names;
}

async function helpOf(command: Command, argv: string[] = []): Promise<string> {
  let text = '';
  await command(['--help', ...argv], createOut(false, (t) => (text += t)));
  return text;
}

/** Whether `command` parses --`flag`: with --help, a known flag is all it looks at. */
async function parses(command: Command, flag: string): Promise<boolean> {
  try {
    await helpOf(command, [`--${flag}`]);
    return true; // a boolean flag
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    if (/needs a value/.test(err.message)) return true; // a flag that takes one
    if (/^unknown option /.test(err.message)) return false;
    throw err;
  }
}

describe('cairn COMMAND --help names the flags the command parses', () => {
  it('the table here has every command cli/main.ts dispatches', () => {
    const main = readFileSync(join(REPO, 'cli', 'main.ts'), 'utf8');
    const table = /const COMMANDS[^{]*\{([\s\S]*?)\n\};/.exec(main)?.[1] ?? '';
    const dispatched = [...table.matchAll(/^ {2}(\w+):/gm)].map((m) => m[1]!);
    assert.ok(dispatched.length > 10, 'cli/main.ts has a COMMANDS table');
    const here = new Set(Object.keys(COMMANDS).map((c) => c.split(' ')[0]!));
    assert.deepEqual(dispatched.filter((c) => !here.has(c)), []);
  });

  /** Each command's help, and the flags it parses (asked about every flag any command could have). */
  const helps: Record<string, string> = {};
  const parsed: Record<string, Set<string>> = {};
  before(async () => {
    for (const [name, command] of Object.entries(COMMANDS)) helps[name] = await helpOf(command);
    const candidates = candidateFlags(Object.values(helps));
    for (const [name, command] of Object.entries(COMMANDS)) {
      parsed[name] = new Set();
      for (const flag of candidates) if (await parses(command, flag)) parsed[name].add(flag);
    }
  });

  it('every flag a command parses is in its help, and every flag its usage lines show is one it parses', () => {
    const wrong: string[] = [];
    for (const name of Object.keys(COMMANDS)) {
      const help = helps[name]!;
      const mentioned = flagsIn(help);
      const usage = flagsIn(help.split('\n\n')[0]!);
      for (const flag of parsed[name]!) if (!mentioned.has(flag)) wrong.push(`cairn ${name} parses --${flag}, which its help does not mention`);
      for (const flag of usage) if (!parsed[name]!.has(flag)) wrong.push(`cairn ${name}'s usage shows --${flag}, which it does not parse`);
    }
    assert.deepEqual(wrong, []);
  });

  it('--json is on each usage line of a command that takes it, where a script author looks for it', () => {
    const wrong: string[] = [];
    for (const name of Object.keys(COMMANDS)) {
      // cairn proof's answer is a proof file, JSON with or without it (its help says so).
      if (!parsed[name]!.has('json') || name === 'proof') continue;
      const lines = helps[name]!.split('\n\n')[0]!.split('\n');
      // A usage is a line naming the command and the lines that go on from it.
      const usages = lines.flatMap((line, i) => {
        if (!line.includes(`cairn ${name} `)) return [];
        const rest = lines.slice(i + 1);
        const end = rest.findIndex((l) => l.includes('cairn '));
        return [[line, ...rest.slice(0, end < 0 ? rest.length : end)].join(' ')];
      });
      if (usages.length === 0) wrong.push(`cairn ${name} has no usage line naming it`);
      for (const usage of usages) if (!/\[--json\]/.test(usage)) wrong.push(`cairn ${name} takes --json, which its usage "${usage.trim().slice(0, 60)}…" does not show`);
    }
    assert.deepEqual(wrong, []);
  });

  it('an example that starts a second node (another --datadir) moves every port the first one listens on', () => {
    // From a newcomer's first hour: the example moved P2P and RPC only, and the node it started
    // failed on the explorer's port 7372, held by the first.
    const wrong: string[] = [];
    for (const line of helps['node']!.split('\n').filter((l) => /^\s+cairn node .*--datadir /.test(l))) {
      const flag = (name: string) => new RegExp(`--${name}[ =](\\S+)`).exec(line)?.[1];
      if (flag('datadir') === DEFAULT_DATADIR || flag('datadir') === `./${DEFAULT_DATADIR}`) continue;
      const ports = { p2p: flag('p2p-port'), rpc: flag('rpc-port'), http: line.includes('--no-http') ? 'none' : flag('http-port') };
      for (const [which, given] of Object.entries(ports)) {
        if (given === undefined || Number(given) === DEFAULT_PORTS[which as keyof typeof ports]) wrong.push(`${line.trim()}: --${which}-port`);
      }
    }
    assert.deepEqual(wrong, []);
  });

  it("cairn account's help says what its nonce and next nonce lines are, which a newcomer saw both at 0 and could not tell apart", () => {
    assert.match(helps['account']!, /the nonce is how many\s+of its transactions the chain holds, the next nonce the one its next transaction takes, counting\s+those pending in the mempool/);
  });

  it("cairn light's help names the JSON-RPC methods a light client answers, the only ones cairn commands can ask it", () => {
    const help = helps['light']!;
    assert.deepEqual(Object.keys(lightRpcHandlers).filter((method) => !new RegExp(`\\b${method}\\b`).test(help)), []);
  });

  it('the environment a command reads is in its help: CAIRN_RPC_TOKEN beside --rpc-token, CAIRN_PASSWORD beside --password-file, and every CAIRN_ variable of cli/ somewhere', () => {
    const wrong: string[] = [];
    const standsIn: Record<string, string> = { 'rpc-token': 'CAIRN_RPC_TOKEN', 'password-file': 'CAIRN_PASSWORD' };
    for (const name of Object.keys(COMMANDS)) {
      for (const [flag, variable] of Object.entries(standsIn)) if (parsed[name]!.has(flag) && !helps[name]!.includes(variable)) wrong.push(`cairn ${name} takes --${flag} but its help does not name ${variable}`);
    }
    const read = new Set(readdirSync(join(REPO, 'cli')).filter((f) => /\.(ts|mjs)$/.test(f)).flatMap((f) => [...readFileSync(join(REPO, 'cli', f), 'utf8').matchAll(/(?:\['|\.|\(')(CAIRN_[A-Z0-9_]+)/g)].map((m) => m[1]!)));
    assert.ok(read.has('CAIRN_PASSWORD'), 'the variables are found where cli/ reads them');
    const allHelp = Object.values(helps).join('\n');
    for (const variable of read) if (!allHelp.includes(variable)) wrong.push(`cli/ reads ${variable}, which no help names`);
    assert.deepEqual(wrong, []);
  });
});
