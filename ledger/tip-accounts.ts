import { toHex } from './bytes.ts';
import { layout } from './layout.ts';
import { ClockCache } from './clock-cache.ts';
import { decodeAccount, type Account } from './state.ts';
import type { CommitQueue } from './commit-queue.ts';
import type { KvStore } from './kv.ts';

/**
 * Accounts at the tip, as ChainDB answers for them: what the commit queue holds, else a cache of
 * what batches committed, else one store read (a batch of them for a block's accounts).
 */
export class TipAccounts {
  private readonly kv: KvStore;
  private readonly writes: CommitQueue;
  /**
   * Accounts in front of the store (null: known not to exist). Filled only with what a batch has
   * committed (and reads that no write straddled), so it never disagrees with the store.
   *
   * ~200 bytes of heap an entry (hex key, two bigints, the map's slot): 32,768 is ~6 MB. It was
   * 500,000 and then 100,000, which a devnet paying ~1,500 new addresses a second filled within a
   * minute. Eviction gives used entries a second chance, so the accounts that matter (senders)
   * stay while one-off recipients pass through; an account not cached costs one read, in the
   * batch of its block's reads.
   */
  private readonly cache = new ClockCache<Account | null>(32_768);

  constructor(kv: KvStore, writes: CommitQueue) {
    this.kv = kv;
    this.writes = writes;
  }

  /** What a batch committed (the queue's callback): from now on the store's value. */
  committed(key: string, account: Account | undefined): void {
    this.cache.set(key, account ?? null);
  }

  /** Forgets every account, after the stored state was replaced underneath (a snapshot's install). */
  clear(): void {
    this.cache.clear();
  }

  /** What is known without a store read: `null` for no account, `undefined` for not known. */
  private known(key: string): Account | null | undefined {
    const queued = this.writes.account(key);
    if (queued !== undefined) return queued;
    return this.cache.get(key);
  }

  async get(address: Uint8Array): Promise<Account | undefined> {
    const key = toHex(address);
    const known = this.known(key);
    if (known !== undefined) return known ?? undefined;
    const generation = this.writes.generation;
    const bytes = await this.kv.get(layout.account(address));
    const account = bytes && decodeAccount(bytes);
    // A write queued or committed meanwhile may have changed it: answer, but do not cache.
    if (generation === this.writes.generation) this.committed(key, account);
    return account;
  }

  async getMany(addresses: readonly Uint8Array[], keys: readonly string[] = addresses.map(toHex)): Promise<(Account | undefined)[]> {
    const out: (Account | undefined)[] = new Array(addresses.length);
    const missing: number[] = [];
    for (let i = 0; i < addresses.length; i++) {
      const known = this.known(keys[i]!);
      if (known === undefined) missing.push(i);
      else out[i] = known ?? undefined;
    }
    if (missing.length === 0) return out;
    const generation = this.writes.generation;
    const values = await this.kv.getMany(missing.map((i) => layout.account(addresses[i]!)));
    const cache = generation === this.writes.generation;
    missing.forEach((i, k) => {
      const bytes = values[k];
      out[i] = bytes && decodeAccount(bytes);
      if (cache) this.committed(keys[i]!, out[i]);
    });
    return out;
  }
}
