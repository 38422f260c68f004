import { toHex } from '../ledger/bytes.ts';
import type { SaneBlock } from './sanity.ts';

export interface OrphanLimits {
  readonly maxCount: number;
  readonly maxBytes: number;
  /** Seconds an orphan may wait for its parent. */
  readonly maxAge: number;
}

export const DEFAULT_ORPHAN_LIMITS: OrphanLimits = { maxCount: 256, maxBytes: 64 * 1024 * 1024, maxAge: 600 };

/**
 * Blocks whose parent has not arrived yet. Bounded in count and bytes (oldest evicted first) and
 * by age, so a peer cannot fill memory with blocks that hang off nothing. Every block here has
 * already passed the context-free checks, proof of work included.
 */
export class OrphanPool {
  private readonly limits: OrphanLimits;
  private readonly byHash = new Map<string, { block: SaneBlock; addedAt: number }>();
  private readonly byParent = new Map<string, Set<string>>();
  private totalBytes = 0;

  constructor(limits: OrphanLimits = DEFAULT_ORPHAN_LIMITS) {
    this.limits = limits;
  }

  get size(): number {
    return this.byHash.size;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  has(hash: Uint8Array): boolean {
    return this.byHash.has(toHex(hash));
  }

  add(block: SaneBlock, now: number): void {
    const key = toHex(block.header.hash);
    if (this.byHash.has(key) || block.bytes.length > this.limits.maxBytes) return;
    this.expire(now);
    this.byHash.set(key, { block, addedAt: now });
    const parent = toHex(block.header.prevHash);
    let siblings = this.byParent.get(parent);
    if (!siblings) this.byParent.set(parent, (siblings = new Set()));
    siblings.add(key);
    this.totalBytes += block.bytes.length;
    while (this.byHash.size > this.limits.maxCount || this.totalBytes > this.limits.maxBytes) {
      this.remove(this.byHash.keys().next().value!); // Map order is insertion order: oldest first
    }
  }

  /** Removes and returns the orphans waiting for `parentHash`. */
  takeChildren(parentHash: Uint8Array): SaneBlock[] {
    const keys = this.byParent.get(toHex(parentHash));
    if (!keys) return [];
    const blocks = [...keys].map((k) => this.byHash.get(k)!.block);
    for (const k of [...keys]) this.remove(k);
    return blocks;
  }

  expire(now: number): void {
    for (const [key, entry] of this.byHash) {
      if (now - entry.addedAt <= this.limits.maxAge) break; // insertion order is age order
      this.remove(key);
    }
  }

  private remove(key: string): void {
    const entry = this.byHash.get(key);
    if (!entry) return;
    this.byHash.delete(key);
    this.totalBytes -= entry.block.bytes.length;
    const parent = toHex(entry.block.header.prevHash);
    const siblings = this.byParent.get(parent);
    siblings?.delete(key);
    if (siblings?.size === 0) this.byParent.delete(parent);
  }
}
