import type { Env } from '../env.ts';
import { TransportError } from '../transport.ts';

/** How long sync and account queries leave out a peer that let a request run out its deadline. */
const SILENT_MS = 60_000;
/**
 * Requests in a row a peer may answer busy until the client gives up on it (its busy answers
 * waited out, PATIENCE in client.ts) before it is left out as a silent one is, and for how long.
 * Busy is the protocol's honest answer, no fault: it costs no ban score and is forgotten at the
 * peer's next real answer; but each such request cost up to ~6 s of a sync round, and a peer that
 * claims more work is asked first at every round.
 */
const BUSY_STRIKES = 2;
const BUSY_SILENT_MS = 30_000;

/**
 * Peers that let a request run out its deadline, or keep answering busy, left out of the light
 * client's sync rounds and account queries for a while. Neither is a proven fault (neither costs
 * ban score), but each timeout costs the whole deadline, and a peer that claims the most work is
 * asked first at every round: one that answered its status and then nothing (or only busy) held
 * every sync and every query that long.
 */
export class SilentPeers {
  private readonly env: Pick<Env, 'monotonic'>;
  /** On the monotonic clock: the wall clock set back would keep a peer out for as long. */
  private readonly until = new Map<string, number>();
  /** Requests given up on busy since each peer's last real answer. */
  private readonly busy = new Map<string, number>();

  constructor(env: Pick<Env, 'monotonic'>) {
    this.env = env;
  }

  /** Takes note of `err` from a request to `peer`, if it is a timeout or a busy answer given up on. */
  note(peer: string, err: unknown): void {
    if (!(err instanceof TransportError)) return;
    if (err.code === 'TRANSPORT_TIMEOUT') this.until.set(peer, this.env.monotonic() + SILENT_MS);
    if (err.code !== 'TRANSPORT_BUSY') return;
    const strikes = (this.busy.get(peer) ?? 0) + 1;
    this.busy.set(peer, strikes);
    if (strikes >= BUSY_STRIKES) this.until.set(peer, Math.max(this.until.get(peer) ?? 0, this.env.monotonic() + BUSY_SILENT_MS));
  }

  /** `peer` answered a request (headers, a proof): its busy answers are forgotten. */
  answered(peer: string): void {
    this.busy.delete(peer);
  }

  /** Whether to wait on `peer` now. */
  waitsOn(peer: string): boolean {
    return (this.until.get(peer) ?? 0) <= this.env.monotonic();
  }

  /** A peer gone: the record goes with it (one per connected peer at most). */
  forget(peer: string): void {
    this.until.delete(peer);
    this.busy.delete(peer);
  }
}
