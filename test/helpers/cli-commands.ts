/**
 * Each command line of `cairn` that has a help text of its own, as cli/main.ts dispatches it, for
 * tests that run commands in-process (cli/main.ts runs its command line as it is imported).
 */
import { accountCommand, mempoolCommand, peersCommand, txCommand } from '../../cli/cmd-chain.ts';
import { devnetCommand } from '../../cli/cmd-devnet.ts';
import { generateCommand } from '../../cli/cmd-generate.ts';
import { genesisCommand } from '../../cli/cmd-genesis.ts';
import { blockCommand, blocksCommand, rpcHelpCommand, statusCommand, stopCommand, tipsCommand } from '../../cli/cmd-inspect.ts';
import { keysCommand } from '../../cli/cmd-keys.ts';
import { lightCommand } from '../../cli/cmd-light.ts';
import { initCommand, nodeCommand } from '../../cli/cmd-node.ts';
import { proofCommand, verifyCommand } from '../../cli/cmd-proof.ts';
import { sendCommand } from '../../cli/cmd-send.ts';
import { snapshotCommand } from '../../cli/cmd-snapshot.ts';
import type { Out } from '../../cli/output.ts';

export type Command = (argv: string[], out: Out) => Promise<void>;

export const CLI_COMMANDS: Record<string, Command> = {
  init: initCommand,
  node: nodeCommand,
  devnet: devnetCommand,
  generate: generateCommand,
  'genesis new': (argv, out) => genesisCommand(['new', ...argv], out),
  snapshot: snapshotCommand,
  light: lightCommand,
  stop: stopCommand,
  'keys new': (argv, out) => keysCommand(['new', ...argv], out),
  'keys list': (argv, out) => keysCommand(['list', ...argv], out),
  'keys import': (argv, out) => keysCommand(['import', ...argv], out),
  'keys export': (argv, out) => keysCommand(['export', ...argv], out),
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
  'help rpc': rpcHelpCommand,
};
