import { BoundedSet } from './bounded.ts';

/**
 * Ids of transactions whose signatures have been verified. A transaction id hashes the whole
 * signed encoding (fields, key and signature), so an id in here vouches for exactly those bytes.
 * A transaction checked when it entered the mempool is not checked again when its block arrives.
 * Bounded: the oldest ids go first, and a confirmed transaction's id is dropped with its block.
 */
export class SignatureCache {
  private readonly ids: BoundedSet<string>;
  hits = 0;

  constructor(capacity = 200_000) {
    this.ids = new BoundedSet(capacity);
  }

  get size(): number {
    return this.ids.size;
  }

  /** `idHex`: the transaction's id in hex (Transaction.idHex). */
  has(idHex: string): boolean {
    const found = this.ids.has(idHex);
    if (found) this.hits++;
    return found;
  }

  delete(idHex: string): void {
    this.ids.delete(idHex);
  }

  add(idHex: string): void {
    this.ids.add(idHex);
  }
}
