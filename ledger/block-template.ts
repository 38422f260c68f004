import { MaxFeeHeap } from './fee-heap.ts';
import type { MempoolEntry } from './pending-set.ts';
import { EMPTY_ACCOUNT, type AccountSource } from './state.ts';
import type { Transaction } from './transaction.ts';

/**
 * A block template's transactions from pending ones, by sender (`senders`: each sender's entries by
 * nonce): only those executable in order from each sender's state nonce, the highest fee first
 * across senders, never a later nonce before an earlier one.
 */
export async function selectForBlock(senders: Iterable<ReadonlyMap<bigint, MempoolEntry>>, state: AccountSource, maxTxs: number, maxBytes: number): Promise<Transaction[]> {
  const queues: MempoolEntry[][] = [];
  for (const pending of senders) {
    const first = pending.values().next().value!;
    let nonce = ((await state.getAccount(first.tx.from)) ?? EMPTY_ACCOUNT).nonce;
    const run: MempoolEntry[] = [];
    for (let e = pending.get(nonce); e; e = pending.get(++nonce)) run.push(e);
    if (run.length > 0) queues.push(run);
  }
  const heads = new MaxFeeHeap<MempoolEntry>(queues);
  const out: Transaction[] = [];
  let bytes = 0;
  while (out.length < maxTxs) {
    const next = heads.pop();
    if (!next) break;
    if (bytes + next.tx.bytes.length > maxBytes) break; // fixed-size txs: nothing smaller will fit
    out.push(next.tx);
    bytes += next.tx.bytes.length;
  }
  return out;
}
