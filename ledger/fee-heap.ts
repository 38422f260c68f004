import type { Transaction } from './transaction.ts';

/** What the heap needs of a pending transaction. */
interface Pending {
  readonly tx: Transaction;
}

/** A binary heap over per-sender queues, ordered by the fee of each queue's head: the mempool's block template order. */
export class MaxFeeHeap<E extends Pending> {
  private readonly heap: { queue: E[]; pos: number }[];

  constructor(queues: E[][]) {
    this.heap = [];
    for (const queue of queues) this.push({ queue, pos: 0 });
  }

  private fee(i: number): bigint {
    const item = this.heap[i]!;
    return item.queue[item.pos]!.tx.fee;
  }

  private push(item: { queue: E[]; pos: number }): void {
    this.heap.push(item);
    let i = this.heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.fee(parent) >= this.fee(i)) break;
      [this.heap[parent], this.heap[i]] = [this.heap[i]!, this.heap[parent]!];
      i = parent;
    }
  }

  pop(): E | undefined {
    const top = this.heap[0];
    if (!top) return undefined;
    const entry = top.queue[top.pos]!;
    top.pos++;
    if (top.pos >= top.queue.length) {
      const last = this.heap.pop()!;
      if (this.heap.length === 0) return entry;
      this.heap[0] = last;
    }
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let largest = i;
      if (l < this.heap.length && this.fee(l) > this.fee(largest)) largest = l;
      if (r < this.heap.length && this.fee(r) > this.fee(largest)) largest = r;
      if (largest === i) break;
      [this.heap[largest], this.heap[i]] = [this.heap[i]!, this.heap[largest]!];
      i = largest;
    }
    return entry;
  }
}
