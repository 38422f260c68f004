/**
 * The node's live events, numbered: `block` (connected to the main chain), `reorg` (blocks taken
 * off and put on, with their common ancestor) and `tx` (entered the mempool), each with the
 * addresses it touched so a client can follow some (`address` events, derived per client). A
 * bounded history lets a client that reconnects with the last id it saw get everything after it;
 * one whose id fell out of the history, or comes from an earlier run of the node, is told to
 * resync instead. Nothing is ever skipped silently.
 */
import { toHex } from '../../ledger/bytes.ts';
import { encodeAddress } from '../../ledger/keys.ts';
import type { Block } from '../../ledger/block.ts';
import type { MempoolEntry } from '../../ledger/mempool.ts';
import { decodeTransaction, type Transaction } from '../../ledger/transaction.ts';
import type { ReorgEvent } from '../../consensus/chain.ts';
import type { NodeView } from '../view.ts';

export type FeedEventType = 'block' | 'reorg' | 'tx';

export interface FeedEvent {
  readonly seq: number;
  readonly type: FeedEventType;
  /** What a client is sent, made on first use (address text costs ~10 µs each to encode). */
  data(): Record<string, unknown>;
  /** Addresses the event touched, in hex (a transaction's own keys), for `address` subscribers. */
  readonly addresses: ReadonlySet<string>;
}

/** Why a client must fetch state afresh instead of resuming. */
export type ResyncReason = 'too-old' | 'restarted' | 'unknown-id';

export type Resume = { readonly events: readonly FeedEvent[] } | { readonly resync: ResyncReason; readonly oldest: number; readonly latest: number };

export interface TxSummary {
  readonly txid: string;
  readonly from: string;
  readonly to: string;
  readonly amount: string;
  readonly fee: string;
  readonly size: number;
}

/** Events kept for clients that come back: past this many, a returning client resyncs. */
export const DEFAULT_HISTORY = 10_000;
/**
 * And at most this many addresses across the kept events (~80 bytes each): a run of full blocks
 * touches thousands each, and must not hold gigabytes for clients that may never come back.
 */
export const MAX_HISTORY_ADDRESSES = 500_000;
const RECENT_TXS = 10;

export function txSummary(tx: Transaction): TxSummary {
  return { txid: tx.idHex, from: encodeAddress(tx.from), to: encodeAddress(tx.to), amount: tx.amount.toString(), fee: tx.fee.toString(), size: tx.bytes.length };
}

function blockRef(block: Block): { height: number; hash: string } {
  return { height: block.header.height, hash: toHex(block.header.hash) };
}

/** Every address the blocks touched, in hex: the transactions' own keys, so no encoding on the import path. */
function touched(blocks: readonly Block[], into = new Set<string>()): Set<string> {
  for (const b of blocks) {
    if (b.header.height > 0) into.add(toHex(b.coinbase.to));
    for (const tx of b.txs) {
      into.add(tx.fromKey);
      into.add(tx.toKey);
    }
  }
  return into;
}

function memo(make: () => Record<string, unknown>): () => Record<string, unknown> {
  let made: Record<string, unknown> | undefined;
  return () => (made ??= make());
}

export class EventFeed {
  /** Names this run of the node: ids from another run cannot be resumed. */
  readonly runId: string;
  private readonly capacity: number;
  private readonly maxAddresses: number;
  /**
   * The kept events are `history[first..]`: dropping one moves `first`, and the array is cut only
   * when the dropped half is the larger, so an event costs O(1) however long the history. Cut at
   * every drop, a full history of 10,000 cost ~44 µs an event (against ~1.5), once per admitted
   * transaction: 7–8% of the devnet miner's event loop (BENCHMARKS.md).
   */
  private history: FeedEvent[] = [];
  private first = 0;
  private historyAddresses = 0;
  private seq = 0;
  private readonly listeners = new Set<(e: FeedEvent) => void>();
  /** The last transactions that entered the mempool, newest first. */
  private readonly recent: Transaction[] = [];
  private readonly detach: () => void;

  constructor(node: Pick<NodeView, 'chain' | 'mempool'>, options: { runId: string; capacity?: number; maxAddresses?: number }) {
    this.runId = options.runId;
    this.capacity = options.capacity ?? DEFAULT_HISTORY;
    this.maxAddresses = options.maxAddresses ?? MAX_HISTORY_ADDRESSES;
    const onTip = (e: ReorgEvent) => this.onTip(e);
    const onAdded = (entry: MempoolEntry) => this.onTx(entry.tx);
    node.chain.on('tip', onTip);
    node.mempool.on('added', onAdded);
    this.detach = () => {
      node.chain.off('tip', onTip);
      node.mempool.off('added', onAdded);
    };
  }

  close(): void {
    this.detach();
    this.listeners.clear();
  }

  /** The id a client sees for `seq`: `runId:seq`. */
  idOf(seq: number): string {
    return `${this.runId}:${seq}`;
  }

  get latest(): number {
    return this.seq;
  }

  get oldest(): number {
    return this.history[this.first]?.seq ?? this.seq + 1;
  }

  /** Streams open now. */
  get subscribers(): number {
    return this.listeners.size;
  }

  subscribe(listener: (e: FeedEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * What a client that last saw `lastId` (`runId:seq`, or a bare seq meaning this run) missed:
   * every later event, or why it must resync.
   */
  resume(lastId: string): Resume {
    const m = /^(?:([^:]+):)?(\d{1,15})$/.exec(lastId.trim());
    const span = { oldest: this.oldest, latest: this.seq };
    if (!m) return { resync: 'unknown-id', ...span };
    if (m[1] !== undefined && m[1] !== this.runId) return { resync: 'restarted', ...span };
    const seq = Number(m[2]);
    if (seq > this.seq) return { resync: 'unknown-id', ...span };
    // The client has seen everything up to seq: it needs seq + 1 onwards, all still kept.
    if (seq + 1 < this.oldest) return { resync: 'too-old', ...span };
    // Kept events are numbered one after another from `oldest`.
    return { events: this.history.slice(this.first + (seq + 1 - this.oldest)) };
  }

  /** The last transactions that entered the mempool, newest first. */
  recentTxs(): TxSummary[] {
    return this.recent.map(txSummary);
  }

  private push(type: FeedEventType, data: () => Record<string, unknown>, addresses: Set<string>): void {
    const event: FeedEvent = { seq: ++this.seq, type, data, addresses };
    this.history.push(event);
    this.historyAddresses += addresses.size;
    const history = this.history;
    while (this.first < history.length - 1 && (history.length - this.first > this.capacity || this.historyAddresses > this.maxAddresses)) {
      this.historyAddresses -= history[this.first]!.addresses.size;
      history[this.first++] = undefined as unknown as FeedEvent; // let the collector have it now
    }
    if (2 * this.first >= history.length) {
      this.history = history.slice(this.first);
      this.first = 0;
    }
    for (const l of this.listeners) l(event);
  }

  private onTip(e: ReorgEvent): void {
    if (e.disconnected.length > 0) {
      const data = { common_ancestor: { height: e.fork.height, hash: e.fork.hashHex }, disconnected: e.disconnected.map(blockRef), connected: e.connected.map(blockRef) };
      this.push('reorg', () => data, touched(e.connected, touched(e.disconnected)));
    }
    for (const b of e.connected) {
      // Made now: a closure would keep the whole block alive for as long as the history keeps it.
      const data = {
        height: b.header.height,
        hash: toHex(b.header.hash),
        previousblockhash: toHex(b.header.prevHash),
        timestamp: b.header.timestamp,
        tx_count: b.txs.length,
        size: b.bytes.length,
        miner: encodeAddress(b.coinbase.to),
      };
      this.push('block', () => data, touched([b]));
    }
  }

  private onTx(tx: Transaction): void {
    this.recent.unshift(tx);
    if (this.recent.length > RECENT_TXS) this.recent.pop();
    // The event keeps the transaction's bytes, not the transaction: a decoded transaction with the
    // fields admission made of it is ~1.5 KB of heap, which ten thousand kept events held long
    // after their transactions had left the mempool. A client that asks decodes them again.
    const bytes = tx.bytes;
    this.push('tx', memo(() => ({ ...txSummary(decodeTransaction(bytes)) })), new Set([tx.fromKey, tx.toKey]));
  }
}
