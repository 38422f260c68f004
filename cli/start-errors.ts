/**
 * Why a node could not start, in words that name the fix. libp2p and LevelDB say what failed in
 * their own terms ("Some configured addresses failed to be listened on…", "Database failed to
 * open"); the user needs the port and the flag, or the process that holds the datadir.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CairnError, StoreError } from '../ledger/errors.ts';
import { RPC_ENDPOINT_FILE, type RpcEndpointFile } from '../node/rpc-types.ts';

export class StartError extends CairnError {
  constructor(code: 'PORT_IN_USE' | 'PORT_DENIED' | 'HOST_UNAVAILABLE' | 'LISTEN_FAILED' | 'DATADIR_IN_USE' | 'DATADIR_MISMATCH', message: string) {
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
  return pid !== undefined && alive(pid) ? pid : undefined;
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

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0); // throws when no such process
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // there, but another user's
  }
}

/** `err` translated when it is one a user can fix; otherwise `err` itself. */
export function explainStartFailure(err: unknown, s: StartSettings): unknown {
  if (err instanceof StoreError && err.code === 'STORE_LOCKED') {
    const pid = runningPid(s.datadir);
    return new StartError(
      'DATADIR_IN_USE',
      pid !== undefined
        ? `the datadir ${s.datadir} is in use by the cairn ${s.what ?? 'node'} with pid ${pid}: stop it first (cairn stop --datadir ${s.datadir}), or give this one another --datadir`
        : `the datadir ${s.datadir} is in use by another process (a ${s.what ?? 'node'} still starting, or cairn init): wait for it or stop it, or give this one another --datadir`,
    );
  }
  // The network comes from the datadir's genesis.json (cli/datadir.ts), so the two disagree: one was replaced.
  if (err instanceof StoreError && err.code === 'STORE_GENESIS_MISMATCH') {
    return new StartError('DATADIR_MISMATCH', `${s.datadir}'s genesis.json is not the genesis of its store: ${err.message.replace(/^this store/, 'the store')}; put the genesis file of the store's network back in ${s.datadir}, or give that chain/ a datadir of its own`);
  }
  const text = err instanceof Error ? err.message : '';
  const e = err as (NodeJS.ErrnoException & { port?: number; address?: string; hostname?: string }) | undefined;
  // Our own servers (RPC, HTTP, metrics): Node's listen error carries the port it was for.
  const server = e?.port === undefined ? undefined : servers(s).find((x) => x.port === e.port);
  if (server && e?.code === 'EADDRINUSE') {
    return new StartError('PORT_IN_USE', `${server.name} ${server.port}${server.what} is already in use (another cairn node?): choose another with ${server.flag} N, or ${server.flag} 0 for any free port`);
  }
  if (server && e?.code === 'EACCES') {
    return new StartError('PORT_DENIED', `${server.name} ${server.port}${server.what} needs privileges this process does not have: choose one above 1023 with ${server.flag} N`);
  }
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

/** The servers a node or light client runs besides P2P, for naming the one a listen error is about. */
function servers(s: StartSettings): { port: number; name: string; what: string; flag: string }[] {
  const all = [
    { port: s.rpcPort, name: 'RPC port', what: '', flag: '--rpc-port' },
    { port: s.httpPort, name: 'HTTP port', what: ' (explorer and REST API)', flag: '--http-port' },
    { port: s.metricsPort, name: 'metrics port', what: ' (Prometheus)', flag: '--metrics-port' },
  ];
  return all.filter((x): x is typeof x & { port: number } => x.port !== undefined && x.port !== 0);
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
