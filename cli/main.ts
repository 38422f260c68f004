import { readFileSync } from 'node:fs';
import { nearest, UsageError } from './args.ts';
import { accountCommand, mempoolCommand, peersCommand, txCommand } from './cmd-chain.ts';
import { blockCommand, blocksCommand, rpcHelpCommand, statusCommand, stopCommand, tipsCommand } from './cmd-inspect.ts';
import { keysCommand } from './cmd-keys.ts';
import { proofCommand, verifyCommand } from './cmd-proof.ts';
import { sendCommand } from './cmd-send.ts';
import { answerFailureText, answerWriter, createOut, failureText, type Out } from './output.ts';
import { LIGHT_RUNTIME, NODE_RUNTIME, execWithRuntime } from './runtime.ts';

type Command = (argv: string[], out: Out) => Promise<void>;

const COMMANDS: Record<string, Command> = {
  // Loaded on demand: these pull in libp2p, which read-only commands should not pay for.
  init: async (argv, out) => (await import('./cmd-node.ts')).initCommand(argv, out),
  node: async (argv, out) => {
    execWithRuntime(NODE_RUNTIME); // returns only once the process runs with the node's memory settings
    return (await import('./cmd-node.ts')).nodeCommand(argv, out);
  },
  devnet: async (argv, out) => (await import('./cmd-devnet.ts')).devnetCommand(argv, out),
  genesis: async (argv, out) => (await import('./cmd-genesis.ts')).genesisCommand(argv, out),
  generate: async (argv, out) => (await import('./cmd-generate.ts')).generateCommand(argv, out),
  snapshot: async (argv, out) => (await import('./cmd-snapshot.ts')).snapshotCommand(argv, out),
  light: async (argv, out) => {
    // A long-running process too: under Node's defaults V8's young generation grew to 128 MB
    // while it checked headers, some 300 MB resident for a million of them against ~35 MB.
    execWithRuntime(LIGHT_RUNTIME);
    return (await import('./cmd-light.ts')).lightCommand(argv, out);
  },
  stop: stopCommand,
  keys: keysCommand,
  send: sendCommand,
  status: statusCommand,
  account: accountCommand,
  tx: txCommand,
  block: blockCommand,
  blocks: blocksCommand,
  tips: tipsCommand,
  peers: peersCommand,
  mempool: mempoolCommand,
  proof: proofCommand,
  verify: verifyCommand,
};

const HELP = `Usage: cairn COMMAND [options]     (cairn COMMAND --help for each)

Run a node:
  genesis   new: write the genesis file of a network of your own
  init      create a datadir for a network
  node      run a validating (and with --mine, mining) node
  stop      stop a running node cleanly
  devnet    run several local nodes wired together
  generate  mine a long chain of valid blocks into a new datadir (tests, benchmarks)
  snapshot  export | import the state at one block, checked against its header (a fast start)

Keys and transactions:
  keys      new | list | import | export keys in an encrypted keystore
  send      sign a transfer locally and submit it (amounts: 1500 base units, or 12.5CRN)

Inspect chain state:
  status | account ADDRESS | tx ID | block HEIGHT|HASH|latest | blocks [--last N] | tips
  peers | mempool
  help rpc  the node's JSON-RPC methods

Proofs (no trust in any node):
  proof account ADDRESS | proof tx ID   a proof file with its headers, to stdout
  verify FILE                           check a proof file offline
  light     a light client: headers only, accounts proven by any peer (cairn account ADDRESS --light)

cairn --version prints the version. Human output shows amounts in coins (1000 CRN); --json keeps
exact base units, in one JSON document on stdout. What is said to people (progress, warnings,
errors) goes to stderr. Exit status: 0 success, 2 a command line that cannot run as written,
1 any other failure.

Example, a mining node on ./data with the bundled devnet genesis:
  cairn node --mine`;

/** package.json's version: beside cli/ in the sources, two levels up from dist/cli/. */
function version(): string {
  for (const path of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'cairn' && pkg.version) return pkg.version;
    } catch {
      // not this one
    }
  }
  return 'unknown';
}

/** Runs `argv`, its answer written by `write`; the exit status. */
export async function main(argv: string[], write: (text: string) => void): Promise<number> {
  const [name, ...rest] = argv;
  const out = createOut(rest.includes('--json'), write);
  if (name === '--version' || name === '-V' || name === 'version') {
    out.result({ version: version(), node: process.versions.node }, `cairn ${version()} (Node.js ${process.versions.node})`);
    return 0;
  }
  // `cairn help send` is `cairn send --help`, as git's and npm's help COMMAND; a name that is no
  // command is refused as it would be on its own, with the nearest command.
  if (name === 'help' && rest[0] !== undefined && rest[0] !== 'rpc') return main(Object.hasOwn(COMMANDS, rest[0]) ? [rest[0], '--help'] : [rest[0]], write);
  // Own names only: COMMANDS['toString'] is Object's, which ran as a command that did nothing.
  const command = name === 'help' && rest[0] === 'rpc' ? (a: string[], o: Out) => rpcHelpCommand(a.slice(1), o) : name === undefined || !Object.hasOwn(COMMANDS, name) ? undefined : COMMANDS[name];
  if (name === undefined || name === '--help' || name === '-h' || (name === 'help' && rest[0] !== 'rpc')) {
    out.help(HELP);
    return name === undefined ? 2 : 0;
  }
  // What --help to point a usage error to: `help rpc` is a command of two words.
  const label = name === 'help' ? 'help rpc' : name;
  try {
    // `cairn --json status`, as some tools take their flags: each command reads its own.
    if (!command && name.startsWith('-')) {
      const given = rest.find((a) => Object.hasOwn(COMMANDS, a));
      throw new UsageError(`${name} goes after the command, as every flag: cairn ${given ?? 'COMMAND'} ${name}`);
    }
    if (!command) {
      const near = nearest(name, [...Object.keys(COMMANDS), 'help']);
      throw new UsageError(`unknown command "${name}"${near ? `; did you mean ${near}?` : ''}`);
    }
    await command(rest, out);
    return 0;
  } catch (err) {
    // One line, no stack: the message says what went wrong and, where it can, what to do (a bug
    // says so, with its stack).
    process.stderr.write(failureText(err, err instanceof UsageError, `see cairn ${command ? label + ' ' : ''}--help`));
    return err instanceof UsageError ? 2 : 1;
  }
}

// A write that fails (a reader gone: EPIPE; a terminal hung up: EIO; a full disk) is an 'error'
// event, which unheard ended the process where it was, with a stack: mid-wait, mid-stop, its
// nodes left running (devnet). The answer's own failure is kept by answerWriter.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
const answer = answerWriter();
let code = await main(process.argv.slice(2), answer.write);
// Libraries may leave timers behind (libp2p does, for a second): once our output has been
// flushed, nothing is left to wait for.
process.stdout.write('', () => {
  const failure = answerFailureText(answer.failure());
  if (failure !== undefined && code === 0) {
    process.stderr.write(failure);
    code = 1;
  }
  process.exitCode = code;
  process.stderr.write('', () => process.exit(code));
});
