import { resolve } from 'node:path';
import { createLightClient } from '../node/launch.ts';
import { checkPeerAddress } from '../node/libp2p/addresses.ts';
import { DEFAULT_LIGHT_DATADIR, DEFAULT_PORTS, checkpointArg, listenAddress, parse, port, str, UsageError } from './args.ts';
import { initDatadir, lockLightDatadir } from './datadir.ts';
import { createLogger, isLogLevel } from './log.ts';
import { bootstrapWithoutOwn, checkPortsDistinct, explainStartFailure, probePorts } from './start-errors.ts';
import { failedStopMs, stopOnUnexpectedErrors } from './fatal.ts';
import type { Out } from './output.ts';

/** `cairn light`: headers only, accounts proven by any peer (`cairn account ADDRESS --light`). */
export async function lightCommand(argv: string[], out: Out): Promise<void> {
  const { values } = parse(argv, {
    datadir: { type: 'string' },
    genesis: { type: 'string' },
    bootstrap: { type: 'string', multiple: true },
    'p2p-port': { type: 'string' },
    'p2p-host': { type: 'string' },
    'rpc-port': { type: 'string' },
    'no-mdns': { type: 'boolean' },
    'log-level': { type: 'string' },
    checkpoint: { type: 'string' },
  });
  if (values.help) return out.help(HELP);
  const level = str(values, 'log-level') ?? 'info';
  if (!isLogLevel(level)) throw new UsageError('--log-level must be one of fatal, error, warn, info, debug, trace, silent');
  const bootstrap = (values.bootstrap as string[] | undefined) ?? [];
  if (bootstrap.length === 0) throw new UsageError('give at least one full node to start from: --bootstrap MULTIADDR (cairn status on it shows its listen addresses)');
  const bootstrapIds = bootstrap.map((addr) => {
    try {
      return checkPeerAddress(addr);
    } catch (err) {
      throw new UsageError(`--bootstrap ${(err as Error).message}`);
    }
  });
  const checkpoint = checkpointArg(str(values, 'checkpoint'));
  const datadir = str(values, 'datadir') ?? DEFAULT_LIGHT_DATADIR;
  const p2pPort = port(values, 'p2p-port') ?? 0;
  const rpcPort = port(values, 'rpc-port') ?? DEFAULT_PORTS.lightRpc;
  const p2pHost = str(values, 'p2p-host') ?? '0.0.0.0';
  const listen = listenAddress(p2pHost, p2pPort);
  checkPortsDistinct([['--p2p-port', p2pPort], ['--rpc-port', rpcPort]]);
  const settings = { datadir, p2pPort, p2pHost, rpcPort, what: 'light client' as const };
  const stopMs = failedStopMs();
  // As `cairn node`: the light client keeps its peer key in the datadir too, and a port in use
  // refuses the start before the datadir is made.
  const { dial, warning: ownAddress } = await bootstrapWithoutOwn(datadir, bootstrap, bootstrapIds, 'light client');
  await probePorts(settings);
  // The datadir holds the network's genesis.json, as a node's does; the light client keeps no chain store.
  const { params } = await initDatadir(datadir, str(values, 'genesis'), { store: false }).catch((err: unknown) => {
    throw explainStartFailure(err, settings);
  });
  const lock = await lockLightDatadir(datadir).catch((err: unknown) => {
    throw explainStartFailure(err, settings);
  });
  const logger = createLogger(level);
  if (ownAddress) logger.warn(ownAddress);
  const light = createLightClient(
    {
      datadir,
      params,
      bootstrap: dial,
      listen: [listen],
      mdns: !values['no-mdns'],
      rpc: { port: rpcPort },
      checkpoint,
    },
    () => stop('rpc stop'),
  );
  light.client.on('log', (lvl, msg, fields) => logger[lvl](fields ?? {}, msg));
  let resolveStop: () => void = () => {};
  const stopping = new Promise<void>((r) => (resolveStop = r));
  function stop(reason: string): void {
    logger.info({ reason }, 'stopping');
    resolveStop();
  }
  /** An error nothing handled: the command fails with it, once stopped. */
  let failure: Error | undefined;
  stopOnUnexpectedErrors(logger, (err) => {
    failure = err;
    stop('unexpected error');
  }, stopMs);
  // As `cairn node`: a hang-up is a clean stop, and a terminal gone is no reason to die mid-stop
  // (main.ts hears the failed writes).
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => stop(signal));
  try {
    await light.start();
  } catch (err) {
    await light.stop().catch(() => {}); // whatever did start (the transport) is closed again
    await lock.release();
    throw explainStartFailure(err, settings);
  }
  logger.info({ datadir: resolve(datadir), rpc: light.rpc?.url, listen: light.client.transport.listenAddresses() }, 'light client');
  await stopping;
  await light.stop();
  await lock.release();
  logger.info('stopped');
  if (failure) throw failure;
}

const HELP = `Usage: cairn light --bootstrap MULTIADDR [--bootstrap …] [--datadir DIR] [--genesis FILE]
                   [--checkpoint HEIGHT:HASH] [--p2p-port N] [--p2p-host IP] [--rpc-port N]
                   [--no-mdns] [--log-level L]

Runs a light client on DIR (default ./light): it keeps headers only (their hashes in a file, the
last 2,048 in memory), follows the chain with the most work among its peers' (every header checked:
links, proof of work, ASERT targets, timestamps), and answers cairn account ADDRESS --light by
asking a peer for a proof against its tip's state root and checking it itself. A peer that lies
(headers that do not check or add up, a forged or stale proof) is banned.
--checkpoint HEIGHT:HASH names a block you trust (cairn block HEIGHT on a node of your own): no
chain is taken until one passes through it, and a peer whose chain forks below it is banned.
Without one, the first peer met with a long cheap chain can hold a new client on it. DIR keeps
the last checkpoint given for the next start; one the chain kept contradicts is refused.
JSON-RPC on 127.0.0.1:7373 (a port of its own, so it runs beside a node; 0 picks a free port; the
endpoint and token go to DIR/rpc.json); its methods are status, getAccount and stop, what cairn
status, cairn account ADDRESS --light and cairn stop ask (the other commands need a full node).
P2P on any free port (--p2p-port N) of all interfaces (--p2p-host IP). Each --bootstrap is /ip4/HOST/tcp/PORT/p2p/PEER_ID
(cairn status on that node lists them). One light client per DIR: a second is refused, naming the
first's pid. It stops on SIGINT, SIGTERM, SIGHUP or cairn stop --datadir DIR; an error nothing
handles (a bug) is logged with its stack and stops it as cleanly, exit status 1. It re-executes
itself once with the node's memory settings (cairn node --help), a smaller young generation and
V8's --optimize-for-size; CAIRN_NODE_RUNTIME=off keeps Node's.

Examples:
  cairn light --bootstrap /ip4/127.0.0.1/tcp/7370/p2p/12D3Koo…
  cairn light --bootstrap /ip4/192.0.2.7/tcp/7370/p2p/12D3Koo… --checkpoint 120000:0000a1…
  cairn account cairn12rqpp3a5l5vef8weqsvd42g9rzmqx4la30zrhz --light`;
