import { existsSync } from 'node:fs';
import { DEFAULT_DATADIR, NODE_ACCESS, NODE_ACCESS_HELP, count, parse, UsageError } from './args.ts';
import { connect, datadirPath, isLightStatus, RpcClient, RpcClientError } from './rpc-client.ts';
import { folderEntries } from './datadir.ts';
import { coins, duration, lines, si, type Out } from './output.ts';
import { endpointPid, isLightDatadir, runningPid } from './start-errors.ts';
import type { StatusResult } from '../node/rpc-types.ts';
import type { LightStatusResult } from '../node/light/rpc.ts';

const now = () => Math.floor(Date.now() / 1000);

/** What is true about syncing, in words: never "up to date" when there is nobody to be behind. */
export function syncText(s: StatusResult): string {
  if (s.snapshotSync) return `snapshot sync: ${snapshotSyncText(s.snapshotSync)}`;
  if (s.reorganising) return `reorganising: at ${s.height} part-way to another chain with more work (heights and balances are the fork's until it ends)`;
  if (s.syncing) return `syncing: at ${s.height} of ${s.syncTarget}`;
  if (s.peers === 0) {
    // A --bootstrap peer of another network was banned: "--bootstrap a peer" would send the operator to look in the wrong place.
    if (s.lastBan) return `no peers: the last one was banned (see banned)${s.mining ? '' : ', and not mining: nothing will add blocks'}`;
    if (s.mining && s.miningWaits) return `no peers yet: the miner waits (${s.miningWaits})`;
    return s.mining ? 'no peers yet: mining on its own' : 'no peers yet, and not mining: nothing will add blocks (--bootstrap a peer, or --mine)';
  }
  if (s.peersApart > 0) {
    const who = s.peersApart === 1 ? '1 peer claims' : `${s.peersApart} peers claim`;
    return `apart: ${who} more work (unchecked) on a chain that forks deeper than this node reorganises; not followed (see the log)`;
  }
  // Behind is less work than a peer's chain, not a lower height: a slow branch can be taller and lighter.
  if (s.peersAhead > 0) return `behind: ${s.peersAhead === 1 ? '1 peer claims' : `${s.peersAhead} peers claim`} more work${s.bestPeerHeight !== null && s.bestPeerHeight > s.height ? ` (best announced height ${s.bestPeerHeight})` : ''}`;
  return `in step with ${s.peers} peer${s.peers === 1 ? '' : 's'}${s.bestPeerHeight === null ? '' : ` (best announced height ${s.bestPeerHeight})`}`;
}

/** A snapshot sync's join under way, in words: its headers read as a sync at 0, its install as a reorganisation. */
export function snapshotSyncText(j: NonNullable<StatusResult['snapshotSync']>): string {
  switch (j.phase) {
    case 'headers':
      return `downloading and checking the best peer's headers, ${j.done} of ${j.total}`;
    case 'chunks':
      return `fetching the state at block ${j.pivot} from peers, ${j.done} chunk${j.done === 1 ? '' : 's'} checked, ${j.total - j.done} to go`;
    case 'installing':
      return `installing the state at block ${j.pivot} (step ${Math.min(j.done + 1, j.total)} of ${j.total}); then the blocks after it`;
  }
}

/** Peers banned now, and the last ban with its reason (another network's peer: the genesis to fix). */
export function bannedText(s: Pick<StatusResult, 'banned' | 'lastBan'>): string {
  if (s.banned === 0 && !s.lastBan) return 'none';
  const count = `${s.banned} peer${s.banned === 1 ? '' : 's'}`;
  return s.lastBan ? `${count}; the last ${duration(s.lastBan.secondsAgo)} ago, ${s.lastBan.peer}: ${s.lastBan.reason}` : count;
}

/** The background check of the history below a snapshot, in words. */
export function historyText(h: NonNullable<StatusResult['historyCheck']>): string {
  switch (h.state) {
    case 'checking':
      return `checking blocks 1 to ${h.target} in the background: ${h.height} done (${Math.floor((100 * h.height) / Math.max(1, h.target))}%)${h.reason ? `; ${h.reason}` : ''}`;
    case 'valid':
      return `blocks 1 to ${h.height} checked: all valid, and the state at ${h.height} is the one taken`;
    case 'invalid':
      return `INVALID: block ${h.height} ${h.reason} (the chain followed is invalid below the snapshot; resync from genesis without --snapshot-sync)`;
    case 'off':
      return `not checked (--no-history-check)`;
  }
}

export async function statusCommand(argv: string[], out: Out): Promise<void> {
  const { values } = parse(argv, NODE_ACCESS);
  if (values.help) return out.help(HELP.status);
  // A light client answers status too (cairn status --datadir ./light), with fields of its own.
  const answer = (await (await connect(values)).call('status', {})) as StatusResult | LightStatusResult;
  if (isLightStatus(answer)) return out.result(answer, () => lightStatusText(answer));
  out.result(answer, () => lines(statusLines(answer)));
}

/** A full node's status, line by line. */
export function statusLines(s: StatusResult): [string, string | number][] {
  const mb = (n: number) => (n / 2 ** 20).toFixed(0);
  return [
    ['network', `${s.network} (chain id ${s.chainId}, coin ${s.unit} with ${s.decimals} decimals)`],
    ['genesis', s.genesis],
    ['height', `${s.height}, last block ${duration(s.tipAge)} ago`],
    ['head', s.head],
    ['sync', syncText(s)],
    ...(s.checkpoint ? [['checkpoint', checkpointLine(s.checkpoint, 'below it, sync takes only a chain that passes through it')] as [string, string]] : []),
    ...(s.stateBase > 0 ? [['snapshot', `state taken from block ${s.stateBase} by snapshot sync (no history below it)`] as [string, string]] : []),
    ...(s.historyCheck ? [['history', historyText(s.historyCheck)] as [string, string]] : []),
    ...(s.prunedHeight > 0 ? [['pruned', `bodies of blocks 1 to ${s.prunedHeight} ${s.stateBase > 0 ? 'absent' : 'deleted'} (headers and state kept)`] as [string, string]] : []),
    ['peers', `${s.peers} (${s.peersIn} in, ${s.peersOut} out)`],
    ['banned', bannedText(s)],
    ['mining', !s.mining ? 'no' : s.miningWaits ? `waits: ${s.miningWaits}` : `yes, ${si(s.miningHashRate ?? 0, 'H/s')} (this node, last 10 s)`],
    ['difficulty', s.difficulty === '1' ? '1 hash a block' : `${si(Number(s.difficulty), '')} hashes a block`],
    ['hash rate', s.networkHashRate === null ? 'not known yet (needs 2 blocks)' : `${si(s.networkHashRate, 'H/s')} (network, estimated from recent blocks)`],
    ['total work', s.totalWork],
    ['mempool', `${s.mempool} txs, ${s.mempoolBytes} bytes`],
    ['fee', `${coins(s.feeEstimate, s)} suggested (minimum ${coins(s.minFee, s)})`],
    ['memory', `${mb(s.memory.rss)} MB resident, heap ${mb(s.memory.heapUsed)} of ${mb(s.memory.heapTotal)} MB (limit ${mb(s.memory.heapLimit)} MB)`],
    ['listen', s.listen.join('\n' + ' '.repeat(12))],
  ];
}

/** A light client's status: what it follows and from whom; it has no mempool, miner or state. */
export function lightStatusText(s: LightStatusResult): string {
  const sync = s.syncing
    ? 'syncing headers'
    : s.peers === 0
      ? s.banned.length > 0
        ? 'no peers: those it met were banned (see banned)'
        : 'no peers yet: nothing to follow (check that its --bootstrap node runs)'
      : `following ${s.peers} peer${s.peers === 1 ? '' : 's'}`;
  return lines([
    ['network', `${s.network} (coin ${s.unit} with ${s.decimals} decimals)`],
    ['genesis', s.genesis],
    ['client', 'light: headers only; cairn account ADDRESS --light proves a balance'],
    ['height', s.height],
    ['head', s.head],
    ['total work', s.totalWork],
    ['sync', sync],
    ['peers', s.peers],
    ['checkpoint', s.checkpoint ? checkpointLine(s.checkpoint, 'it takes no chain until one passes through it') : 'none (cairn light --checkpoint HEIGHT:HASH names a block to trust)'],
    ['banned', s.banned.length === 0 ? 'none' : s.banned.map((b) => `${b.peer}: ${b.reason}`).join('\n' + ' '.repeat(12))],
    ['headers', `${Math.ceil(s.headerMemoryBytes / 1024)} kB in memory (older ones as hashes in a file)`],
    ['listen', s.listen.join('\n' + ' '.repeat(12))],
  ]);
}

/** A checkpoint held (a light client's or a node's), and whether the chain has reached it: `below` says what holds until it has. */
function checkpointLine(c: { height: number; hash: string; passed: boolean }, below: string): string {
  return `${c.height}:${c.hash} ${c.passed ? '(its chain passes through it)' : `(not reached yet: ${below})`}`;
}

export async function blockCommand(argv: string[], out: Out): Promise<void> {
  const { values, positionals } = parse(argv, NODE_ACCESS, 1);
  if (values.help) return out.help(HELP.block);
  const which = positionals[0];
  const valid = which === 'latest' || (which !== undefined && ((/^\d+$/.test(which) && which.length < 16) || /^[0-9a-f]{64}$/.test(which)));
  if (!valid) throw new UsageError('give a block HEIGHT (a whole number), HASH (64 lower-case hex digits) or latest');
  const rpc = await connect(values);
  const status = await rpc.call('status', {});
  const height = /^\d+$/.test(which) ? Number(which) : undefined;
  // Said here in the CLI's words; the node's would be about its parameter's bounds.
  if (height !== undefined && height > status.height) throw new RpcClientError('NOT_FOUND', `no such block: height ${height} is above the tip (${status.height})`);
  const params = which === 'latest' ? { hash: status.head } : height !== undefined ? { height } : { hash: which };
  const b = await rpc.call('getBlock', params);
  out.result(b, lines([
    ['hash', b.hash],
    ['height', b.height],
    ['previous', b.prevHash],
    ['time', `${new Date(b.timestamp * 1000).toISOString()} (${duration(now() - b.timestamp)} ago)`],
    ['target', b.target],
    ['nonce', b.nonce],
    ['state root', b.stateRoot],
    ['size', `${b.size} bytes`],
    ['coinbase', `${coins(b.coinbase.amount, status)} to ${b.coinbase.to}`],
    ['main chain', b.mainChain],
    ['txs', b.txs.length === 0 ? '(none)' : b.txs.join('\n' + ' '.repeat(12))],
  ]));
}

export async function blocksCommand(argv: string[], out: Out): Promise<void> {
  const { values } = parse(argv, { ...NODE_ACCESS, last: { type: 'string' } });
  if (values.help) return out.help(HELP.blocks);
  const last = count(values, 'last', 1, 1000) ?? 10;
  const blocks = await (await connect(values)).call('getBlocks', { count: last });
  const t = now();
  const rows = blocks.map((b) => [String(b.height), b.hash, `${duration(t - b.timestamp)} ago`, String(b.txs), `${b.size} B`, b.miner ?? '(genesis)']);
  out.result(blocks, table(['height', 'hash', 'age', 'txs', 'size', 'miner'], rows));
}

export async function tipsCommand(argv: string[], out: Out): Promise<void> {
  const { values } = parse(argv, NODE_ACCESS);
  if (values.help) return out.help(HELP.tips);
  const tips = await (await connect(values)).call('getTips', {});
  const rows = tips.map((t) => [String(t.height), t.status, String(t.branchLength), t.hash]);
  const forks = tips.length - 1;
  out.result(tips, table(['height', 'status', 'branch', 'hash'], rows) + `\n${forks === 0 ? 'no forks seen' : `${forks} fork${forks === 1 ? '' : 's'} seen`}`);
}

export async function stopCommand(argv: string[], out: Out): Promise<void> {
  const { values } = parse(argv, { ...NODE_ACCESS, timeout: { type: 'string' } });
  if (values.help) return out.help(HELP.stop);
  const timeoutSeconds = count(values, 'timeout', 1, 3600) ?? 60;
  const datadir = typeof values.datadir === 'string' ? values.datadir : values.rpc ? undefined : DEFAULT_DATADIR;
  const pid = datadir === undefined ? undefined : runningPid(datadir);
  const what = datadir !== undefined && isLightDatadir(datadir) ? 'light client' : 'node';
  let rpc: RpcClient;
  try {
    rpc = await connect(values);
  } catch (err) {
    if (!(err instanceof RpcClientError && err.code === 'NODE_NOT_RUNNING') || datadir === undefined) throw err;
    return notRunning(datadir, what, err, out);
  }
  await rpc.call('stop', {});
  const deadline = Date.now() + timeoutSeconds * 1000;
  while (await stillRunning(rpc, pid)) {
    if (Date.now() > deadline) throw new RpcClientError('STOP_TIMEOUT', `the node was asked to stop but still runs after ${timeoutSeconds} s${pid ? ` (pid ${pid})` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  out.result({ stopped: true, pid: pid ?? null }, `stopped the ${what}${pid ? ` (pid ${pid})` : ''}`);
}

/**
 * `cairn stop` with nothing running on `datadir`. On a datadir of Cairn's, what was asked for
 * holds, as systemctl stop of a stopped unit: exit 0. On no datadir at all (a typo, ./data from
 * another folder) the node meant may still run elsewhere: exit 1, and no "start one" either.
 */
async function notRunning(datadir: string, what: string, err: RpcClientError, out: Out): Promise<void> {
  const { entries, cairn } = await folderEntries(datadir);
  if (cairn) {
    const ended = endpointPid(datadir);
    const unclean = ended === undefined ? '' : ` (its last run, pid ${ended}, ended without a clean stop: killed, or crashed; see its log)`;
    return out.result({ stopped: false, pid: null }, `no ${what} is running on ${datadirPath(datadir)}: nothing to stop${unclean}`);
  }
  if (entries.length > 0) throw err; // a devnet's folder: connect named its nodes' datadirs
  const why = existsSync(datadir) ? 'it is empty' : 'no such directory';
  throw new RpcClientError('NODE_NOT_RUNNING', `nothing to stop: ${datadirPath(datadir)} is no datadir (${why}); if the ${what} runs on another, give that --datadir`);
}

/** A node has stopped when its process is gone (known pid) or, reached by URL, when it stops answering. */
async function stillRunning(rpc: RpcClient, pid: number | undefined): Promise<boolean> {
  if (pid !== undefined) {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }
  return rpc.call('status', {}).then(() => true, () => false);
}

/** `cairn help rpc`: the node's own list of its JSON-RPC methods. */
export async function rpcHelpCommand(argv: string[], out: Out): Promise<void> {
  const { values } = parse(argv, NODE_ACCESS);
  if (values.help) return out.help(HELP.rpc);
  const { methods } = await (await connect(values)).call('help', {});
  const width = Math.max(...methods.map((m) => m.name.length));
  out.result(methods, methods.map((m) => `${m.name.padEnd(width)}  ${m.description}`).join('\n'));
}

/** Columns padded to their widest cell; the last column is not padded. */
function table(head: string[], rows: string[][]): string {
  const all = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

export const HELP = {
  status: `Usage: cairn status [--datadir DIR | --rpc URL --rpc-token T] [--json]

The node's network and coin, height and the age of its last block, whether it is syncing (a
snapshot sync's phase too: its headers, the state's chunks, the install) or has no peers to sync
from, peers in and out, the peers banned and the last ban's reason (a peer of another
network: a different genesis.json), whether it mines, the difficulty (expected hashes a
block), the network's estimated hash rate, mempool, a suggested fee, memory and listen addresses.
On a light client's datadir (cairn status --datadir ./light): its height, head, peers, the peers it
banned and why, and the memory its headers take.
${NODE_ACCESS_HELP}

Examples:
  cairn status
  cairn status --datadir ./b --json
  cairn status --datadir ./light`,
  block: `Usage: cairn block HEIGHT|HASH|latest [--datadir DIR | --rpc URL --rpc-token T] [--json]

A block of the main chain by height, any stored block by hash, or the main chain's latest.
${NODE_ACCESS_HELP}

Examples:
  cairn block latest
  cairn block 0
  cairn block 42 --json`,
  blocks: `Usage: cairn blocks [--last N] [--datadir DIR | --rpc URL --rpc-token T] [--json]

The last N blocks of the main chain (default 10, at most 1000), newest first: height, hash, age,
transactions, size and the miner's address.
${NODE_ACCESS_HELP}

Examples:
  cairn blocks
  cairn blocks --last 50 --json`,
  tips: `Usage: cairn tips [--datadir DIR | --rpc URL --rpc-token T] [--json]

Every chain tip the node knows: the main chain's (active) and the end of each fork it has seen,
with the fork's length from where it branched off (valid-fork: it could win with more work;
invalid: it broke a rule).
${NODE_ACCESS_HELP}

Example:
  cairn tips`,
  stop: `Usage: cairn stop [--timeout SECONDS] [--datadir DIR | --rpc URL --rpc-token T] [--json]

Asks the node to stop cleanly (as Ctrl-C or SIGTERM would) and waits until it has (default 60 s).
With no node running on a datadir of Cairn's it says so and exits 0 (--json: stopped false): what
was asked for holds. A path that holds nothing of a node's is an error (exit 1).
${NODE_ACCESS_HELP}

Examples:
  cairn stop
  cairn stop --datadir ./b`,
  rpc: `Usage: cairn help rpc [--datadir DIR | --rpc URL --rpc-token T] [--json]

The JSON-RPC methods of the running node, each with what it does, as the node itself lists them
(its help method). docs/RPC.md documents their parameters and results; rpc.discover answers the
same as an OpenRPC document.
${NODE_ACCESS_HELP}

Examples:
  cairn help rpc
  cairn help rpc --datadir ./b --json`,
};
