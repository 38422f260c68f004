import type { Env } from '../env.ts';
import { TransportError } from '../transport.ts';

/** How long sync and account queries leave out a peer that let a request run out its deadline. */
const SILENT_MS = 60_000;

/**
 * Peers that let a request run out its deadline, left out of the light client's sync rounds and
 * account queries for a while. A timeout is no proven fault (it costs no ban score), but each one
 * costs the whole deadline, and a peer that claims the most work is asked first at every round:
 * one that answered its status and then nothing held every sync and every query that long.
 */
export class SilentPeers {
  private readonly env: Pick<Env, 'monotonic'>;
  /** On the monotonic clock: the wall clock set back would keep a peer out for as long. */
  private readonly until = new Map<string, number>();

  constructor(env: Pick<Env, 'monotonic'>) {
    this.env = env;
  }

  /** Takes note of `err` from a request to `peer`, if it is a timeout. */
  note(peer: string, err: unknown): void {
    if (err instanceof TransportError && err.code === 'TRANSPORT_TIMEOUT') this.until.set(peer, this.env.monotonic() + SILENT_MS);
  }

  /** Whether to wait on `peer` now. */
  waitsOn(peer: string): boolean {
    return (this.until.get(peer) ?? 0) <= this.env.monotonic();
  }

  /** A peer gone: the record goes with it (one per connected peer at most). */
  forget(peer: string): void {
    this.until.delete(peer);
  }
}
