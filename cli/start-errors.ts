/**
 * Why a node could not start, in words that name the fix. libp2p and LevelDB say what failed in
 * their own terms ("Some configured addresses failed to be listened on…", "Database failed to
 * open"); the user needs the port and the flag, or the process that holds the datadir.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer, isIP } from 'node:net';
import { join } from 'node:path';
import { CairnError, StoreError, isDiskFull } from '../ledger/errors.ts';
import { processAlive } from '../node/durable-file.ts';
import { keptPeerId, PEER_KEY_FILE } from '../node/libp2p/identity.ts';
import { RPC_ENDPOINT_FILE, type RpcEndpointFile } from '../node/rpc-types.ts';
import { UsageError } from './args.ts';
import { datadirHolder } from './lock-holder.ts';

export class StartError extends CairnError {
  constructor(code: 'PORT_IN_USE' | 'PORT_DENIED' | 'HOST_UNAVAILABLE' | 'LISTEN_FAILED' | 'DATADIR_IN_USE' | 'DATADIR_MISMATCH' | 'OWN_PEER_ID' | 'DISK_FULL', message: string) {
    super(code, message);
  }
}

export interface StartSettings {
  readonly datadir: string;
  /** What runs on a datadir, as a refusal names the process holding it (default a node). */
  readonly what?: 'node' | 'light client';
  readonly p2pPort: number;
  readonly p2pHost?: string | undefined;
  readonly rpcPort: number;
  readonly httpPort?: number | undefined;
  readonly httpHost?: string | undefined;
  readonly metricsPort?: number | undefined;
}

/** Whether `datadir` is a light client's: its lock (cli/datadir.ts, lockLightDatadir) and no chain store. */
export function isLightDatadir(datadir: string): boolean {
  return existsSync(join(datadir, 'lock')) && !existsSync(join(datadir, 'chain'));
}

/** The pid a running node wrote to DIR/rpc.json, if it is there and that process is alive. */
export function runningPid(datadir: string): number | undefined {
  const pid = endpointPid(datadir);
  return pid !== undefined && processAlive(pid) ? pid : undefined;
}

/** The pid DIR/rpc.json names, alive or not. */
export function endpointPid(datadir: string): number | undefined {
  try {
    const { pid } = JSON.parse(readFileSync(join(datadir, RPC_ENDPOINT_FILE), 'utf8')) as RpcEndpointFile;
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The datadir held by another process: the cairn node or light client with `pid` (its rpc.json's),
 * else the process holding its lock, if the system says (one still starting has no rpc.json yet).
 */
function inUse(s: StartSettings, pid: number | undefined): StartError {
  if (pid !== undefined) {
    return new StartError('DATADIR_IN_USE', `the datadir ${s.datadir} is in use by the cairn ${s.what ?? 'node'} with pid ${pid}: stop it first (cairn stop --datadir ${s.datadir}), or give this one another --datadir`);
  }
  const holder = datadirHolder(s.datadir, s.what === 'light client');
  const by = !holder ? `another process (a ${s.what ?? 'node'} still starting, or cairn init)` : holder.waitingForPassword ? `cairn node with pid ${holder.pid}, still starting: waiting for the password of its new coinbase key` : holder.command ? `cairn ${holder.command} with pid ${holder.pid}${holder.command === 'node' || holder.command === 'light' ? ', still starting' : ''}` : `another process with pid ${holder.pid}`;
  return new StartError('DATADIR_IN_USE', `the datadir ${s.datadir} is in use by ${by}: wait for it or stop it${holder ? ` (kill ${holder.pid})` : ''}, or give this one another --datadir`);
}

/**
 * A --bootstrap naming the peer id this datadir's key gives: libp2p refuses to dial it ("Can not
 * dial self"; the node dropped it without a word, then advised --bootstrap), and when the datadir
 * is a copy of that peer's, the two nodes share one identity: each refuses the other's connections
 * as its own, and peers take them for one node (one connection, one ban). A new key is the fix.
 */
export function ownPeerId(datadir: string, key: string, bootstrap: string, peerId: string, what: StartSettings['what'] = 'node'): StartError {
  return new StartError('OWN_PEER_ID', `--bootstrap ${bootstrap} names this ${what}'s own peer id, ${peerId} (its key is ${key}): if that is this ${what}'s address, leave it out; if ${datadir} is a copy of that node's datadir, the two have one identity and cannot connect: with this ${what} stopped, delete ${key} (the next start makes a new one)`);
}

/**
 * The --bootstrap addresses to dial, those with this datadir's own peer id left out, and the
 * warning that says so: one list of every node given to each (a compose file, a unit template)
 * names each one itself. A list of nothing but its own (a copied datadir) has no one to start
 * from, and refuses the start with the fix. `ids` are the addresses' peer ids, in order.
 */
export async function bootstrapWithoutOwn(datadir: string, bootstrap: readonly string[], ids: readonly string[], what: StartSettings['what'] = 'node'): Promise<{ dial: string[]; warning?: string }> {
  const own = bootstrap.length > 0 ? await keptPeerId(datadir) : undefined;
  const self = own === undefined ? -1 : ids.indexOf(own);
  if (self < 0) return { dial: [...bootstrap] };
  const key = join(datadir, PEER_KEY_FILE);
  const dial = bootstrap.filter((_, i) => ids[i] !== own);
  if (dial.length === 0) throw ownPeerId(datadir, key, bootstrap[self]!, own!, what);
  return { dial, warning: `--bootstrap ${bootstrap[self]} names this ${what}'s own peer id, ${own}: left out (if ${datadir} is a copy of another's datadir, the two cannot connect: with this ${what} stopped, delete ${key})` };
}

/**
 * Refuses one port given to two listeners (0, any free port, aside): it would fail on whichever
 * listens second, named as if another program held it, and the probe (probePorts), which lets
 * each go before it tries the next, does not see it.
 */
export function checkPortsDistinct(given: readonly (readonly [flag: string, port: number | undefined])[]): void {
  for (const [i, [flag, n]] of given.entries()) {
    const twice = given.slice(i + 1).find(([, m]) => n !== undefined && n !== 0 && m === n);
    if (twice) throw new UsageError(`${flag} and ${twice[0]} are both ${n}: each needs a port of its own`);
  }
}

/** `err` translated when it is one a user can fix; otherwise `err` itself. */
export function explainStartFailure(err: unknown, s: StartSettings): unknown {
  if (err instanceof StoreError && err.code === 'STORE_LOCKED') return inUse(s, runningPid(s.datadir));
  // The network comes from the datadir's genesis.json (cli/datadir.ts), so the two disagree: one was replaced.
  if (err instanceof StoreError && err.code === 'STORE_GENESIS_MISMATCH') {
    return new StartError('DATADIR_MISMATCH', `${s.datadir}'s genesis.json is not the genesis of its store: ${err.message.replace(/^this store/, 'the store')}; put the genesis file of the store's network back in ${s.datadir}, or give that chain/ a datadir of its own`);
  }
  const text = err instanceof Error ? err.message : '';
  // Node's own words for a file beside the store (rpc.json, the peer key), or LevelDB's for a
  // write: the store's open says it already (STORE_DISK_FULL, ledger/kv-level.ts).
  if (isDiskFull(err) && !(err instanceof StoreError && err.code === 'STORE_DISK_FULL')) {
    return new StartError('DISK_FULL', `the disk holding ${s.datadir} is full (${text}): free some space on it and start again; nothing in the datadir is damaged`);
  }
  const e = err as ListenError | undefined;
  // Our own servers (RPC, HTTP, metrics): Node's listen error carries the port it was for.
  const server = e?.port === undefined ? undefined : servers(s).find((x) => x.port === e.port);
  const refused = server && listenRefusal(server, e!);
  if (refused) return refused;
  // Only the HTTP server listens on a host the user chose.
  if (s.httpHost !== undefined && (e?.code === 'EADDRNOTAVAIL' || e?.code === 'ENOTFOUND' || e?.code === 'EAI_AGAIN') && (e.address === s.httpHost || e.hostname === s.httpHost)) {
    return new StartError('HOST_UNAVAILABLE', `--http-host ${s.httpHost} is not an address of this machine (${e.code}): give one of its addresses, 127.0.0.1 for this machine only, or 0.0.0.0 for all`);
  }
  if (err instanceof Error && err.name === 'UnsupportedListenAddressesError') {
    if (text.includes('EADDRINUSE')) {
      return new StartError('PORT_IN_USE', `P2P port ${s.p2pPort} is already in use (another cairn node?): choose another with --p2p-port N, or --p2p-port 0 for any free port`);
    }
    if (text.includes('EADDRNOTAVAIL') && s.p2pHost !== undefined) {
      return new StartError('HOST_UNAVAILABLE', `--p2p-host ${s.p2pHost} is not an address of this machine (EADDRNOTAVAIL): give one of its addresses, 127.0.0.1 for this machine only, or 0.0.0.0 for all`);
    }
    return new StartError('LISTEN_FAILED', `cannot listen for peers on ${listenFailures(text) || text.split('\n')[0]} (see --p2p-host and --p2p-port)`);
  }
  return err;
}

type ListenError = NodeJS.ErrnoException & { port?: number; address?: string; hostname?: string };

/** A port a node listens on, and the flags a refusal names. */
interface Listener {
  readonly port: number;
  readonly host: string;
  readonly name: string;
  readonly what: string;
  readonly flag: string;
}

/** Why `server` could not listen, in words that name its flag; undefined for an error of another kind. */
function listenRefusal(server: Listener, e: ListenError): StartError | undefined {
  if (e.code === 'EADDRINUSE') {
    return new StartError('PORT_IN_USE', `${server.name} ${server.port}${server.what} is already in use (another cairn node?): choose another with ${server.flag} N, or ${server.flag} 0 for any free port`);
  }
  if (e.code === 'EACCES') {
    return new StartError('PORT_DENIED', `${server.name} ${server.port}${server.what} needs privileges this process does not have: choose one above 1023 with ${server.flag} N`);
  }
  return undefined;
}

/** The servers a node or light client runs besides P2P, for naming the one a listen error is about. */
function servers(s: StartSettings): Listener[] {
  const all = [
    { port: s.rpcPort, host: '127.0.0.1', name: 'RPC port', what: '', flag: '--rpc-port' },
    { port: s.httpPort, host: s.httpHost ?? '127.0.0.1', name: 'HTTP port', what: ' (explorer and REST API)', flag: '--http-port' },
    { port: s.metricsPort, host: '127.0.0.1', name: 'metrics port', what: ' (Prometheus)', flag: '--metrics-port' },
  ];
  return all.filter((x): x is typeof x & { port: number } => x.port !== undefined && x.port !== 0);
}

/**
 * Listens on each port the node will (P2P, RPC, HTTP, metrics) and lets it go again, so that one
 * another program holds refuses the start before the datadir is made or its store opened: the
 * bind came after them, and a store whose last stop was not clean rebuilt its tree's top, minutes
 * on a long chain, only for the start to fail on a port (and a new datadir was left behind).
 * Another program may still take a port before the node binds it: that bind's error is explained
 * as before. Ports held by the node running on this datadir (its rpc.json names a live pid and the
 * RPC port asked for) are named as that node, as its store's lock would have.
 */
export async function probePorts(s: StartSettings): Promise<void> {
  const p2p: Listener = { port: s.p2pPort, host: s.p2pHost ?? '0.0.0.0', name: 'P2P port', what: '', flag: '--p2p-port' };
  const refusals: { listener: Listener; refused: StartError }[] = [];
  for (const listener of [...(s.p2pPort !== 0 ? [p2p] : []), ...servers(s)]) {
    const err = await tryListen(listener.port, listener.host);
    // Not an address of this machine, and the like: the node's own bind says so, in its words.
    const refused = err && listenRefusal(listener, err);
    if (refused) refusals.push({ listener, refused });
  }
  if (refusals.length === 0) return;
  const endpointPort = rpcPortOf(s.datadir);
  const ours = refusals.some(({ listener, refused }) => refused.code === 'PORT_IN_USE' && listener.flag === '--rpc-port' && listener.port === endpointPort);
  const pid = ours ? runningPid(s.datadir) : undefined;
  if (pid !== undefined) throw inUse(s, pid);
  // A second node beside the first on the default ports: named one at a time, they cost a failed
  // start each (P2P, then RPC, then HTTP).
  const taken = refusals.filter(({ refused }) => refused.code === 'PORT_IN_USE').map(({ listener }) => listener);
  if (taken.length > 1) {
    throw new StartError('PORT_IN_USE', `${inWords(taken.map((l) => `${l.name} ${l.port}${l.what}`))} are already in use (another cairn node?): choose others with ${inWords(taken.map((l) => `${l.flag} N`))}, or 0 for any free port`);
  }
  throw refusals[0]!.refused;
}

/** "a", "a and b", "a, b and c". */
function inWords(items: readonly string[]): string {
  return items.length < 2 ? items.join('') : `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`;
}

/** The RPC port DIR/rpc.json names, if it is there. */
function rpcPortOf(datadir: string): number | undefined {
  try {
    return Number(new URL((JSON.parse(readFileSync(join(datadir, RPC_ENDPOINT_FILE), 'utf8')) as RpcEndpointFile).url).port);
  } catch {
    return undefined;
  }
}

/** The error listening on `host`:`port` meets, if any; the port is let go at once. */
function tryListen(port: number, host: string): Promise<ListenError | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (err: ListenError) => resolve(err));
    // As libp2p's TCP listener binds an IPv6 address: for that family only.
    server.listen({ port, host, ipv6Only: isIP(host) === 6 }, () => server.close(() => resolve(undefined)));
  });
}

/**
 * libp2p's account of the addresses it could not listen on, one "address: error" each. It gives
 * each error with its stack ("at Server.setupListenHandle …") on the lines after it, and
 * transportManager advice before them: only the first line of each error is the user's business.
 */
export function listenFailures(text: string): string {
  return text
    .split('\n')
    .map((l) => /^\s*(\/\S+): (?:Error: )?(.*)$/.exec(l))
    .filter((m) => m !== null)
    .map((m) => `${m[1]}: ${m[2]}`)
    .join('; ');
}
