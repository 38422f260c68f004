import { CairnError } from '../ledger/errors.ts';
import { UsageError } from './args.ts';
import { accountCommand, blockCommand, mempoolCommand, peersCommand, sendCommand, statusCommand, txCommand } from './cmd-chain.ts';
import { keysCommand } from './cmd-keys.ts';
import { createOut, type Out } from './output.ts';
import { execWithNodeRuntime } from './runtime.ts';

type Command = (argv: string[], out: Out) => Promise<void>;

const COMMANDS: Record<string, Command> = {
  // Loaded on demand: these pull in libp2p, which read-only commands should not pay for.
  init: async (argv, out) => (await import('./cmd-node.ts')).initCommand(argv, out),
  node: async (argv, out) => {
    execWithNodeRuntime(); // returns only once the process runs with the node's memory settings
    return (await import('./cmd-node.ts')).nodeCommand(argv, out);
  },
  devnet: async (argv, out) => (await import('./cmd-node.ts')).devnetCommand(argv, out),
  keys: keysCommand,
  send: sendCommand,
  status: statusCommand,
  account: accountCommand,
  tx: txCommand,
  block: blockCommand,
  peers: peersCommand,
  mempool: mempoolCommand,
};

const HELP = `Usage: cairn COMMAND [options]     (cairn COMMAND --help for each)

Run a node:
  init      create a datadir for a network
  node      run a validating (and with --mine, mining) node
  devnet    run several local nodes wired together

Keys and transactions:
  keys      new | list | import | export keys in an encrypted keystore
  send      sign a transfer locally and submit it

Inspect chain state:
  status | account ADDRESS | tx ID | block HEIGHT|HASH | peers | mempool

Example, a mining node on ./data with the bundled devnet genesis:
  cairn node --mine`;

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const out = createOut(rest.includes('--json'));
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    out.help(HELP);
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  try {
    if (!command) throw new UsageError(`unknown command "${name}"`);
    await command(rest, out);
    return 0;
  } catch (err) {
    // One line, no stack: the message says what went wrong and, where it can, what to do.
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`cairn: ${message.split('\n')[0]}${err instanceof UsageError ? ` (see cairn ${command ? name + ' ' : ''}--help)` : ''}\n`);
    return err instanceof UsageError ? 2 : err instanceof CairnError ? 1 : 1;
  }
}

const code = await main(process.argv.slice(2));
// Libraries may leave timers behind (libp2p does, for a second): once our output has been
// flushed, nothing is left to wait for.
process.exitCode = code;
process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
