import { toHex } from '../ledger/bytes.ts';
import type { SaneBlock } from '../consensus/sanity.ts';

/**
 * The blocks that short answers brought of each batch of a body download (node/body-download.ts)
 * not yet whole, by the hash each was asked for. A server stops an answer at the first block it
 * lacks, and one on a budget may answer a batch in parts: throwing the parts away would have the
 * same blocks asked again, and a lone provider answering every batch short would never get one
 * imported. Each block here was checked against its header as it came (fetchBodiesFrom).
 */
export class PartialBatches {
  private readonly byBatch = new Map<number, Map<string, SaneBlock>>();

  /** Of `hashes` (the blocks of batch `index` still lacked), those no answer has brought yet, in order. */
  missing(index: number, hashes: readonly Uint8Array[]): Uint8Array[] {
    const got = this.byBatch.get(index);
    return got ? hashes.filter((h) => !got.has(toHex(h))) : [...hashes];
  }

  /**
   * Keeps what an answer to `asked` brought (its blocks in the order asked, up to the first the
   * server lacked), and returns the blocks of `hashes` in order once every one of them is in.
   */
  add(index: number, hashes: readonly Uint8Array[], asked: readonly Uint8Array[], blocks: readonly SaneBlock[]): SaneBlock[] | undefined {
    let got = this.byBatch.get(index);
    if (!got) this.byBatch.set(index, (got = new Map()));
    blocks.forEach((block, i) => got.set(toHex(asked[i]!), block));
    const whole: SaneBlock[] = [];
    for (const h of hashes) {
      const block = got.get(toHex(h));
      if (!block) return undefined;
      whole.push(block);
    }
    this.byBatch.delete(index);
    return whole;
  }

  /** Batch `index` is in (a copy of it came whole) or imported: its parts are no longer needed. */
  drop(index: number): void {
    this.byBatch.delete(index);
  }
}
