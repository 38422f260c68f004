/**
 * Why a node could not start, in words that name the fix. libp2p and LevelDB say what failed in
 * their own terms ("Some configured addresses failed to be listened on…", "Database failed to
 * open"); the user needs the port and the flag, or the process that holds the datadir.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CairnError, StoreError } from '../ledger/errors.ts';
import { RPC_ENDPOINT_FILE, type RpcEndpointFile } from '../node/rpc-types.ts';

export class StartError extends CairnError {
  constructor(code: 'PORT_IN_USE' | 'LISTEN_FAILED' | 'DATADIR_IN_USE', message: string) {
    super(code, message);
  }
}

export interface StartSettings {
  readonly datadir: string;
  /** What runs on a datadir, as a refusal names the process holding it (default a node). */
  readonly what?: 'node' | 'light client';
  readonly p2pPort: number;
  readonly rpcPort: number;
  readonly httpPort?: number | undefined;
}

/** The pid a running node wrote to DIR/rpc.json, if it is there and that process is alive. */
export function runningPid(datadir: string): number | undefined {
  try {
    const { pid } = JSON.parse(readFileSync(join(datadir, RPC_ENDPOINT_FILE), 'utf8')) as RpcEndpointFile;
    if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
    process.kill(pid, 0); // throws when no such process
    return pid;
  } catch {
    return undefined;
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
  const text = err instanceof Error ? err.message : '';
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EADDRINUSE' && (err as { port?: number }).port === s.rpcPort) {
    return new StartError('PORT_IN_USE', `RPC port ${s.rpcPort} is already in use (another cairn node?): choose another with --rpc-port N, or --rpc-port 0 for any free port`);
  }
  if (code === 'EADDRINUSE' && s.httpPort !== undefined && (err as { port?: number }).port === s.httpPort) {
    return new StartError('PORT_IN_USE', `HTTP port ${s.httpPort} (explorer and REST API) is already in use (another cairn node?): choose another with --http-port N, or --http-port 0 for any free port`);
  }
  if (err instanceof Error && err.name === 'UnsupportedListenAddressesError') {
    if (text.includes('EADDRINUSE')) {
      return new StartError('PORT_IN_USE', `P2P port ${s.p2pPort} is already in use (another cairn node?): choose another with --p2p-port N, or --p2p-port 0 for any free port`);
    }
    // libp2p lists each address and its error on the lines after its first.
    const detail = text.split('\n').slice(1).map((l) => l.trim()).filter(Boolean).join('; ');
    return new StartError('LISTEN_FAILED', `cannot listen for peers on port ${s.p2pPort}: ${detail || text} (see --p2p-host and --p2p-port)`);
  }
  return err;
}
