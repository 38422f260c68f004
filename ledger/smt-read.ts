/**
 * Phase 1 of a state tree update (ledger/smt-update.ts): every node on the changed keys' paths,
 * read into the batch's spans (ledger/smt-batch.ts). It is the update's one asynchronous part and
 * the only one that asks the store anything; phase 2 is synchronous and takes from here only the
 * spans this fills and `siblingOf`.
 */
import { INNER_PREFIX, positionId, zeroAt, type TreeNodeReader } from './smt.ts';
import type { Batch, Span } from './smt-batch.ts';

/**
 * Phase 1: every node on the changed keys' paths, down to where each path ends (a leaf or an empty
 * position), a level at a time. What the reader holds in memory (`readNow`) is taken at once; the
 * rest of a level is asked of the store in one round trip, several levels deep where the reader
 * says to read ahead. Where a span removes accounts and its sibling is untouched, the sibling is
 * read too: if the span empties, a sibling leaf moves up (the collapse) and must be known to be a leaf.
 */
export async function readPaths(reader: TreeNodeReader, batch: Batch, top: Span): Promise<void> {
  // What the store answered, with the positions read ahead of their level.
  const known = new Map<string, Uint8Array | undefined>();
  let level: Span[] = [top];
  let lifted: Span[] = [];
  while (level.length > 0 || lifted.length > 0) {
    let wanted: Set<string> | undefined;
    const lateSiblings: Span[] = [];
    for (const s of lifted) {
      const node = answer(reader, known, s.siblingId!);
      if (node !== false) {
        s.sibling = node;
        continue;
      }
      lateSiblings.push(s);
      (wanted ??= new Set()).add(s.siblingId!);
    }
    const late: Span[] = [];
    for (const s of level) {
      if (s.emptyHalf) continue;
      const node = answer(reader, known, s.id);
      if (node !== false) {
        s.node = node;
        continue;
      }
      late.push(s);
      (wanted ??= new Set()).add(s.id);
      const ahead = reader.readAhead?.(s.depth) ?? 0;
      for (let d = s.depth + 1; d < s.depth + ahead; d++) for (let i = s.lo; i < s.hi; i++) wanted.add(positionId(batch.keys[i]!, d));
    }
    if (wanted) {
      const ids = [...wanted];
      const found = await reader.readNodes(ids);
      ids.forEach((id, i) => known.set(id, found[i]));
      for (const s of lateSiblings) s.sibling = known.get(s.siblingId!);
      for (const s of late) s.node = known.get(s.id);
    }
    const next: Span[] = [];
    lifted = [];
    for (let i = 0; i < level.length; i++) {
      const span = level[i]!;
      const node = span.node;
      if (node === undefined || node[0] !== INNER_PREFIX) continue;
      const { lo, hi, depth } = span;
      const mid = batch.split(lo, hi, depth);
      const left = lo < mid ? batch.span(lo, mid, depth + 1) : undefined;
      const right = mid < hi ? batch.span(mid, hi, depth + 1) : undefined;
      span.left = left;
      span.right = right;
      // A half whose hash in this node is zero is empty: nothing there to read.
      if (left) {
        if (zeroAt(node, 1)) left.emptyHalf = true;
        next.push(left);
      }
      if (right) {
        if (zeroAt(node, 33)) right.emptyHalf = true;
        next.push(right);
      }
      // One half untouched, the other removing accounts: read the untouched one too.
      const lifts = left ? !right && batch.removes(lo, mid) && !zeroAt(node, 33) : batch.removes(mid, hi) && !zeroAt(node, 1);
      if (lifts) {
        span.siblingId = flippedId(batch.keys[lo]!, depth);
        lifted.push(span);
      }
    }
    level = next;
  }
}

/** A position's node if known without asking the store: read this update already, or held by the reader in memory. */
function answer(reader: TreeNodeReader, known: Map<string, Uint8Array | undefined>, id: string): Uint8Array | undefined | false {
  if (known.has(id)) return known.get(id);
  return reader.readNow?.(id) ?? false;
}

/** The position at `depth + 1` under `key`'s position at `depth`, on the side `key` does not take. */
function flippedId(key: Uint8Array, depth: number): string {
  return siblingOf(positionId(key, depth + 1), depth);
}

/**
 * The other half's position next to `id`, a position at `depth + 1`: the bit `depth` flipped. That
 * bit sits in the id's last character (the depth, then the key's bytes up to the bit).
 */
export function siblingOf(id: string, depth: number): string {
  const last = id.length - 1;
  return id.slice(0, last) + String.fromCharCode(id.charCodeAt(last) ^ (0x80 >>> (depth & 7)));
}
