import type { Env } from '../env.ts';

/** What a peer's last proof request came to: a proof that held, and how long it took. */
interface LastProof {
  readonly held: boolean;
  readonly ms: number;
}

/**
 * The order in which a light client asks peers for proofs (node/light/proofs.ts asks a few at
 * once, and the next only as one fails): those whose last proof held first, the quickest first;
 * then those not asked yet, in a random order; then those whose last request came to no proof
 * (a timeout, busy, none at the tip), the quickest to fail first. By peer id, the order was the
 * attacker's to choose: identities cost nothing, and a few with low ids that answer just inside
 * the deadline, or busy, were asked first at every query and held each one up.
 */
export class ProverOrder {
  private readonly env: Pick<Env, 'monotonic' | 'randomBytes'>;
  private readonly last = new Map<string, LastProof>();

  constructor(env: Pick<Env, 'monotonic' | 'randomBytes'>) {
    this.env = env;
  }

  /** `peer`'s proof request, started now: its outcome is recorded once `answer` settles (true: a proof that held). */
  async timed<T>(peer: string, answer: Promise<T>, held: (value: T) => boolean): Promise<T> {
    const since = this.env.monotonic();
    try {
      const value = await answer;
      this.last.set(peer, { held: held(value), ms: this.env.monotonic() - since });
      return value;
    } catch (err) {
      this.last.set(peer, { held: false, ms: this.env.monotonic() - since });
      throw err;
    }
  }

  /** `peers` sorted, best first, `first` (a peer that can prove against our very tip) before the rest. */
  sort<P extends { readonly peer: string }>(peers: readonly P[], first: (p: P) => boolean): P[] {
    const draws = this.env.randomBytes(4 * peers.length);
    const keyed = peers.map((p, i) => {
      const last = this.last.get(p.peer);
      const group = (first(p) ? 0 : 3) + (last === undefined ? 1 : last.held ? 0 : 2);
      return { p, group, key: last?.ms ?? new DataView(draws.buffer, draws.byteOffset).getUint32(4 * i) };
    });
    return keyed.sort((a, b) => a.group - b.group || a.key - b.key).map(({ p }) => p);
  }

  /** A peer gone: its record goes with it. */
  forget(peer: string): void {
    this.last.delete(peer);
  }
}
