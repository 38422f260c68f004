import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { toHex } from '../ledger/bytes.ts';
import { encodeAddress } from '../ledger/keys.ts';
import { createNode } from '../node/launch.ts';
import { StoppedDuringStart } from '../node/node.ts';
import { DEFAULT_REORG_DEPTH } from '../consensus/chain-index.ts';
import { checkPeerAddress } from '../node/libp2p/addresses.ts';
import { coinbaseFor } from './coinbase.ts';
import { DEFAULT_PORTS, checkpointArg, count, hostNames, listenAddress, parse, port, str, UsageError } from './args.ts';
import { DEFAULT_DATADIR, futureGenesisWarning, initDatadir, sharedChainIdWarning } from './datadir.ts';
import { createLogger, isLogLevel } from './log.ts';
import { ProgressBar } from './progress.ts';
import { bootstrapWithoutOwn, checkPortsDistinct, explainStartFailure, probePorts } from './start-errors.ts';
import { exitIfStopHangs, failedStopMs, stopOnUnexpectedErrors } from './fatal.ts';
import type { Out } from './output.ts';

export async function initCommand(argv: string[], out: Out): Promise<void> {
  const { values } = parse(argv, { datadir: { type: 'string' }, genesis: { type: 'string' }, json: { type: 'boolean' } });
  if (values.help) return out.help(HELP.init);
  const datadir = str(values, 'datadir') ?? DEFAULT_DATADIR;
  const { params, created } = await initDatadir(datadir, str(values, 'genesis')).catch((err: unknown) => {
    throw explainStartFailure(err, { datadir, p2pPort: DEFAULT_PORTS.p2p, rpcPort: DEFAULT_PORTS.rpc });
  });
  const warnings = created ? [await sharedChainIdWarning(params), futureGenesisWarning(params, Date.now() / 1000)].filter((w) => w !== undefined) : [];
  for (const warning of warnings) process.stderr.write(`cairn: warning: ${warning}\n`);
  const warning = warnings.join('; ');
  out.result({ datadir: resolve(datadir), network: params.name, created, ...(warning ? { warning } : {}) }, `${created ? 'created' : 'already initialised:'} ${resolve(datadir)} for network ${params.name}`);
}

export async function nodeCommand(argv: string[], out: Out): Promise<void> {
  const { values } = parse(argv, {
    datadir: { type: 'string' },
    genesis: { type: 'string' },
    'p2p-port': { type: 'string' },
    'p2p-host': { type: 'string' },
    'rpc-port': { type: 'string' },
    'http-port': { type: 'string' },
    'http-host': { type: 'string' },
    'http-host-name': { type: 'string', multiple: true },
    'http-trust-proxy': { type: 'boolean' },
    'http-cors': { type: 'string' },
    'no-http': { type: 'boolean' },
    'no-address-index': { type: 'boolean' },
    bootstrap: { type: 'string', multiple: true },
    mine: { type: 'boolean' },
    coinbase: { type: 'string' },
    threads: { type: 'string' },
    keystore: { type: 'string' },
    'password-file': { type: 'string' },
    'no-mdns': { type: 'boolean' },
    'max-inbound-per-ip': { type: 'string' },
    'max-inbound-per-subnet': { type: 'string' },
    'metrics-port': { type: 'string' },
    'log-level': { type: 'string' },
    'prune-keep': { type: 'string' },
    'snapshot-sync': { type: 'boolean' },
    'no-history-check': { type: 'boolean' },
    'snapshot-interval': { type: 'string' },
    'reorg-depth': { type: 'string' },
    checkpoint: { type: 'string' },
  });
  if (values.help) return out.help(HELP.node);
  const reorgDepth = count(values, 'reorg-depth', 1, 0xffffffff);
  const pruneKeep = count(values, 'prune-keep', reorgDepth ?? DEFAULT_REORG_DEPTH, 0xffffffff);
  const snapshotInterval = count(values, 'snapshot-interval', 1, 0xffffffff);
  const checkpoint = checkpointArg(str(values, 'checkpoint'));
  const level = str(values, 'log-level') ?? 'info';
  if (!isLogLevel(level)) throw new UsageError(`--log-level must be one of fatal, error, warn, info, debug, trace, silent`);
  const datadir = str(values, 'datadir') ?? DEFAULT_DATADIR;
  // Flags win; then the environment (so a script or a test can move a node without editing its
  // command line); then the defaults.
  const env = process.env;
  const p2pPort = port(values, 'p2p-port') ?? envPort('CAIRN_P2P_PORT') ?? DEFAULT_PORTS.p2p;
  const rpcPort = port(values, 'rpc-port') ?? envPort('CAIRN_RPC_PORT') ?? DEFAULT_PORTS.rpc;
  const httpPort = port(values, 'http-port') ?? envPort('CAIRN_HTTP_PORT') ?? DEFAULT_PORTS.http;
  const http = values['no-http'] ? undefined : { port: httpPort, host: str(values, 'http-host') ?? '127.0.0.1', hostNames: hostNames(values, 'http-host-name'), cors: str(values, 'http-cors'), trustProxy: values['http-trust-proxy'] === true };
  const p2pHost = str(values, 'p2p-host') ?? (env['CAIRN_P2P_HOST'] || '0.0.0.0');
  const listen = listenAddress(p2pHost, p2pPort, str(values, 'p2p-host') !== undefined ? '--p2p-host' : 'CAIRN_P2P_HOST');
  const mdns = !values['no-mdns'] && !/^(0|off|no|false)$/i.test(env['CAIRN_MDNS'] ?? '');
  const metricsPort = port(values, 'metrics-port');
  const threads = count(values, 'threads', 1, 256) ?? 1;
  const bootstrap = (values.bootstrap as string[] | undefined) ?? [];
  const bootstrapIds = bootstrap.map((addr) => {
    try {
      return checkPeerAddress(addr);
    } catch (err) {
      throw new UsageError(`--bootstrap ${(err as Error).message}`);
    }
  });
  const noPeersWarningMs = envSeconds('CAIRN_NO_PEERS_WARNING_SECONDS');
  const stopMs = failedStopMs();
  const perIp = count(values, 'max-inbound-per-ip', 1, 1000);
  const perSubnet = count(values, 'max-inbound-per-subnet', 1, 1000);
  const connectionLimits = { ...(perIp !== undefined && { maxInboundPerIp: perIp }), ...(perSubnet !== undefined && { maxInboundPerSubnet: perSubnet }) };
  const bar = process.stderr.isTTY ? new ProgressBar() : undefined;
  const logger = createLogger(level, undefined, (text) => {
    bar?.interrupt();
    process.stdout.write(text);
  });

  checkPortsDistinct([['--p2p-port', p2pPort], ['--rpc-port', rpcPort], ['--http-port', http?.port], ['--metrics-port', metricsPort]]);
  const settings = { datadir, p2pPort, p2pHost, rpcPort, httpPort: http?.port, httpHost: http?.host, metricsPort };
  const { dial, warning: ownAddress } = await bootstrapWithoutOwn(datadir, bootstrap, bootstrapIds);
  if (ownAddress) logger.warn(ownAddress);
  await probePorts(settings);
  const { params, created } = await initDatadir(datadir, str(values, 'genesis')).catch((err: unknown) => {
    throw explainStartFailure(err, settings);
  });
  if (created) logger.info({ datadir: resolve(datadir), network: params.name }, 'initialised datadir');
  const sharedChainId = await sharedChainIdWarning(params);
  if (sharedChainId) logger.warn(sharedChainId);
  const notYet = futureGenesisWarning(params, Date.now() / 1000);
  if (notYet) logger.warn(notYet);
  const coinbase = values.mine ? await coinbaseFor(values, datadir, settings, (level, m) => logger[level](m)) : undefined;

  const node = createNode({
    datadir,
    heapGrowth: true,
    params,
    listen: [listen],
    bootstrap: dial,
    mdns,
    mine: coinbase ? { coinbase, threads } : undefined,
    rpc: { port: rpcPort },
    pruneKeep,
    reorgDepth,
    snapshotSync: values['snapshot-sync'] === true,
    checkpoint,
    historyCheck: values['no-history-check'] !== true,
    snapshotInterval,
    noPeersWarningMs,
    connectionLimits,
    http,
    metrics: metricsPort === undefined ? undefined : { port: metricsPort },
    addressIndex: !values['no-address-index'],
  });
  node.on('log', (lvl, msg, fields) => logger[lvl](fields ?? {}, msg));
  /** Why the node stopped on its own (its store refused a write, an error nothing handled): the command fails with it. */
  let failure: Error | undefined;
  const stopping = new Promise<void>((resolveStop) => {
    let signals = 0;
    const onSignal = (signal: string) => {
      if (++signals > 1) {
        // Asked twice, or a hang-up told twice (the terminal's to its foreground group, and the
        // shell's to its jobs): the first stop is under way.
        if (signal === 'rpc stop' || signal === 'SIGHUP' || signal === 'failure' || signal === 'unexpected error') return;
        // A second Ctrl-C or SIGTERM: do not wait. The status a shell and a service manager read for
        // a process ended by that signal (128 + its number).
        process.exit(signal === 'SIGTERM' ? 143 : 130);
      }
      // Before the line that says so: a sync's imports go on a moment into the stop, and each
      // drew the bar again under "stopping", as if nothing had been asked.
      bar?.stop();
      logger.info({ signal }, 'stopping');
      resolveStop();
    };
    // SIGHUP too (a closed terminal or ssh session, the launcher passing one on): left to its
    // default, it ended the node on the spot, without the clean stop's mempool file and close.
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => onSignal(signal));
    // `cairn stop` takes the same road as a signal.
    node.on('stopRequested', () => onSignal('rpc stop'));
    node.on('failed', (err) => {
      if (!failure) exitIfStopHangs(logger, stopMs);
      failure ??= err;
      onSignal('failure');
    });
    stopOnUnexpectedErrors(logger, (err) => {
      failure ??= err;
      onSignal('unexpected error');
    }, stopMs);
  });
  /** How every stop ends, asked during the start or after it. */
  const stopped = async () => {
    await stopping;
    await node.stop();
    logger.info('stopped');
    if (failure) throw failure;
  };
  // Not only once started: a stop asked during the start (a long store open, a resumed snapshot
  // install) ends the start at its next step (CairnNode.start), not after libp2p and the miner.
  void stopping.then(() => node.stop().catch(() => {})); // a failed stop is thrown by stopped()
  try {
    await node.start();
  } catch (err) {
    if (err instanceof StoppedDuringStart) return stopped();
    await node.stop().catch(() => {}); // whatever did start (the store, threads) is closed again
    throw explainStartFailure(err, settings);
  }
  if (coinbase) {
    // The miner hashes on the node's worker threads, one per core: no more than those (node/verify-pool.ts).
    const cores = availableParallelism();
    const more = threads > cores ? { asked: threads, why: `the node has ${cores} worker threads, one per core` } : {};
    logger.info({ coinbase: encodeAddress(coinbase), threads: Math.min(threads, cores), ...more }, 'mining');
  }
  // A join starts from genesis only (node/snapshot-sync.ts): past it the flag does nothing, and a
  // datadir a few blocks in would execute a long chain's whole history while its user waits for a join.
  const height = node.chain.tip.height;
  if (values['snapshot-sync'] && height > 0 && node.db.history.stateBase === 0) {
    logger.warn({ height }, `--snapshot-sync does nothing here: the chain in ${datadir} is at height ${height}, not genesis, so it syncs on from there, executing every block; a snapshot sync needs a new --datadir`);
  }

  node.on('block', (block, source) => {
    // The block's own hash: by the time the event is told, the tip may have moved past it.
    const fields = { height: block.header.height, hash: toHex(block.header.hash), txs: block.txs.length };
    const message = source === 'mined' ? 'mined block' : 'received block';
    if (node.sync.syncing) logger.debug(fields, message);
    else logger.info(fields, message);
  });
  if (bar) node.sync.on('progress', (p) => bar.update(p));
  await stopped();
  void out;
}

/** A port from environment variable `name`, checked like the flag it stands for. */
function envPort(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v) || Number(v) > 65535) throw new UsageError(`${name} must be a port number from 0 to 65535, got "${v}"`);
  return Number(v);
}

/** A whole number of seconds from environment variable `name`, in milliseconds. */
function envSeconds(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 86_400) throw new UsageError(`${name} must be a whole number of seconds from 1 to 86400, got "${v}"`);
  return Number(v) * 1000;
}

export const HELP = {
  init: `Usage: cairn init [--datadir DIR] [--genesis FILE] [--json]

Creates a datadir for the network FILE defines (default: the bundled devnet genesis.json).
Refuses a datadir that already belongs to another network, and a folder that holds other things
and no datadir (give a new or empty one).

Examples:
  cairn init --datadir ./data
  cairn init --datadir ./mainnet --genesis ./mainnet-genesis.json`,
  node: `Usage: cairn node [--datadir DIR] [--genesis FILE] [--p2p-port N] [--p2p-host IP] [--rpc-port N]
                  [--http-port N] [--http-host IP] [--http-host-name NAME]... [--http-trust-proxy] [--http-cors ORIGIN] [--no-http]
                  [--no-address-index]
                  [--bootstrap MULTIADDR]... [--mine] [--coinbase ADDRESS] [--threads N]
                  [--keystore DIR] [--password-file F] [--no-mdns] [--metrics-port N] [--log-level L]
                  [--prune-keep N] [--max-inbound-per-ip N] [--max-inbound-per-subnet N]
                  [--snapshot-sync] [--snapshot-interval N] [--reorg-depth N] [--no-history-check]
                  [--checkpoint HEIGHT:HASH]

Runs a validating node (initialising DIR, default ./data, when empty or missing; a folder of other
things is refused). P2P on port 7370 of all
interfaces (--p2p-host: one IPv4 or IPv6 address of this machine instead), JSON-RPC on
127.0.0.1:7371 (0 picks a free port; the endpoint and token are written to DIR/rpc.json). Each
port must differ from the others. --mine mines to --coinbase, or to the key of the keystore (default
DIR/keystore), creating one on first start (one holding several keys needs --coinbase to say
which; nodes started at once on one --keystore make one key between them, the others waiting
for the first's), hashing on --threads of the node's worker threads
(default 1; at most one per core) whenever they have no signatures to check. It mines nothing while it first catches up with
a peer's longer chain, nor, with peers to find (--bootstrap, or those of its last run), before one
tells its chain (a minute at most), and with --snapshot-sync at genesis it waits for a peer to join from (start
the first node of a new network without it); cairn status says why it waits. Logs are JSON when stdout is not a terminal;
at a terminal, one line a record, starting with the time in UTC (2025-01-31T12:00:00Z).
The explorer (open it in a browser), the REST API and live events are on http://127.0.0.1:7372/
(--http-port, --http-host; read-only, no token; --http-cors lets pages of ORIGIN call it; --no-http
turns it off). On 127.0.0.1 it answers only requests addressed to localhost or an IP address, so
that a web page cannot point a name of its own here (DNS rebinding); --http-host-name NAME adds a
name (a reverse proxy's that passes its Host on), * any; --http-trust-proxy counts a request from this
machine against the client its proxy names last in X-Forwarded-For (rate, streams). The address index behind its address pages is kept unless --no-address-index; an
existing datadir gets one built in the background, its progress in the log.
Stops cleanly on SIGINT, SIGTERM, SIGHUP or cairn stop (during its start too: after the step under
way, such as a long open of the store); an error nothing handles (a bug) is logged with its stack
and stops it as cleanly, exit status 1 (a stop after such a failure that takes over 60 s,
CAIRN_FAILED_STOP_SECONDS, is given up: logged, exit status 1).

--checkpoint HEIGHT:HASH names a block you trust (cairn block HEIGHT on a node of your own): the
node takes no other block at that height, bans a peer whose chain holds one, and below it takes no
chain that stops short of it, from sync or gossip, and mines nothing. Without one, a new node whose
first peer has a long cheap chain (easy to make from genesis: ASERT eases the target of a chain
whose blocks are stamped late) takes it, and once it is longer than the reorg depth (10,000) never
follows the heavier honest chain. DIR keeps the last checkpoint given for the next start; one its
chain contradicts is refused, and nothing changes.

Peers: each --bootstrap names a node as /ip4/HOST/tcp/PORT/p2p/PEER_ID (checked before the node
starts; one that cannot be reached is retried with backoff, and logged). mDNS finds nodes of the
same network on the local network, the DHT finds the peers of peers. Alone for 30 s, the node
says so, and what to check. Inbound connections: at most 48, 4 from one IP (--max-inbound-per-ip)
and 8 from one /24 or /48 (--max-inbound-per-subnet); this machine's own (127.0.0.1) are not
counted. Bans cover the peer's IP too and are kept in DIR/bans.json until they expire.

--prune-keep N keeps the bodies and undo data of only the last N blocks (N at least 10000, the
deepest reorganisation a node follows) and deletes older ones in the background; headers, the
state, its tree and the address index stay, the node still validates every new block, and it
tells peers what it no longer has. Its RPC and REST answer "pruned" for a body it deleted.

--snapshot-sync joins a long chain without executing its history: a node at genesis checks the
best peer's headers, takes the state at the highest snapshot height (a multiple of 10,000) at least
10,000 blocks below their tip from its peers in chunks, each checked against that block's state
root, then executes the blocks after it. It has no history below that block, as a pruned node.
Then, in the background and only while it is caught up, it checks that history: it executes every
block from genesis to that block (bodies from peers that kept them) in DIR/history-check, removed
once done, and its status says how far it got and the verdict (--no-history-check: it does not).
Every node keeps and serves the snapshots joining nodes pick. --snapshot-interval and --reorg-depth
change those two numbers, for test networks (every node of a network must use the same).

Environment (a flag wins over its variable): CAIRN_P2P_PORT, CAIRN_RPC_PORT, CAIRN_HTTP_PORT, CAIRN_P2P_HOST, and
CAIRN_MDNS=off for --no-mdns. CAIRN_PASSWORD is the coinbase key's password (see cairn keys --help).
CAIRN_NO_PEERS_WARNING_SECONDS moves the "no peers" warning (default 30). The node re-executes
itself once with a 768 MB heap ceiling and malloc settings for a long run (flags given to Node, in
NODE_OPTIONS, and malloc variables already set win); CAIRN_NODE_RUNTIME=off keeps Node's defaults.

Examples:
  cairn node --mine
  cairn node --datadir ./b --p2p-port 7380 --rpc-port 7381 --http-port 7382 --bootstrap /ip4/127.0.0.1/tcp/7370/p2p/12D3Koo…
  cairn node --metrics-port 9100 --log-level debug
  cairn node --bootstrap /ip4/192.0.2.7/tcp/7370/p2p/12D3Koo… --checkpoint 120000:0000a1…`,
};
