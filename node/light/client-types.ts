import type { ChainParams } from '../../ledger/genesis.ts';
import type { Account } from '../../ledger/state.ts';
import type { Env } from '../env.ts';
import type { NetworkNames } from '../protocols.ts';
import type { ConnectionGate, Transport } from '../transport.ts';
import type { Checkpoint } from './checkpoint.ts';

/** What a LightClient (node/light/client.ts) is given, what it tells, and what it answers: its own file as node/sync-types.ts. */
export interface LightClientParts {
  readonly params: ChainParams;
  readonly env: Env;
  /** Where the header hashes are kept (a file, `headers`). */
  readonly datadir: string;
  readonly createTransport: (gate: ConnectionGate, names: NetworkNames) => Promise<Transport>;
  readonly bootstrap: readonly string[];
  readonly banSeconds?: number;
  readonly statusIntervalMs?: number;
  /** A block the user trusts (node/light/checkpoint.ts); kept in the datadir, which holds the last one given. */
  readonly checkpoint?: Checkpoint;
}

export interface LightClientEvents {
  log: [level: 'info' | 'warn' | 'debug', message: string, fields?: Record<string, unknown>];
  /**
   * The header chain moved: a new tip (height). `tie` when it has only as much work as the tip it
   * replaced, taken because nobody proved an account against that one (LightSync.takeTie);
   * otherwise it has more.
   */
  tip: [height: number, tie: boolean];
}

/** An account, proven by a peer's proof against the state root of a header this client holds. */
export interface ProvenAccount {
  readonly address: Uint8Array;
  readonly account: Account | undefined;
  readonly height: number;
  readonly blockHash: Uint8Array;
  readonly peer: string;
}
