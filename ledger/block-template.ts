import { MaxFeeHeap } from './fee-heap.ts';
import type { MempoolEntry } from './pending-set.ts';
import { EMPTY_ACCOUNT, readAccounts, type AccountSource } from './state.ts';
import type { Transaction } from './transaction.ts';

/**
 * A block template's transactions from pending ones, by sender (`senders`: each sender's entries by
 * nonce): only those executable in order from each sender's state nonce, the highest fee first
 * across senders, never a later nonce before an earlier one.
 */
export async function selectForBlock(senders: Iterable<ReadonlyMap<bigint, MempoolEntry>>, state: AccountSource, maxTxs: number, maxBytes: number): Promise<Transaction[]> {
  const pendings = [...senders];
  const firsts = pendings.map((pending) => pending.values().next().value!.tx);
  // In one round trip: one read (and one await) per sender made a full pool's template wait on
  // its senders one after another.
  const accounts = await readAccounts(state, firsts.map((tx) => tx.from), firsts.map((tx) => tx.fromKey));
  const queues: MempoolEntry[][] = [];
  for (let i = 0; i < pendings.length; i++) {
    const pending = pendings[i]!;
    let nonce = (accounts[i] ?? EMPTY_ACCOUNT).nonce;
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
