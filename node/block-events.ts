import type { EventEmitter } from 'node:events';
import type { Block } from '../ledger/block.ts';
import type { ChainDB } from '../ledger/chaindb.ts';
import type { Mempool } from '../ledger/mempool.ts';
import type { Chain, Clock } from '../consensus/chain.ts';
import type { Gossip } from './gossip.ts';
import type { OwnBlocks } from './own-blocks.ts';
import type { Sync } from './sync.ts';
import type { TxRelay } from './tx-relay.ts';
import type { TxSignatureVerifier } from './tx-signatures.ts';
import type { NodeEvents } from './node-types.ts';

export interface BlockEventParts {
  readonly chain: Chain;
  readonly db: ChainDB;
  readonly mempool: Mempool;
  readonly signatures: TxSignatureVerifier;
  readonly gossip: Gossip;
  readonly sync: Sync;
  readonly txRelay: TxRelay;
  readonly own: OwnBlocks;
  readonly clock: Clock;
  /** The node, whose listeners hear of each block connected and read its log. */
  readonly events: EventEmitter<NodeEvents>;
}

/**
 * What a node does as blocks come in and its chain moves (CairnNode wires it once at start, as
 * connection-events.ts for peers): the block's road after the chain (docs/ARCHITECTURE.md), where a
 * new tip reaches the signature cache, the mempool and relay, gossip's and sync's news reach each
 * other, and reorganisations and invalid blocks are logged.
 */
export function followBlocks(o: BlockEventParts): void {
  const { chain, mempool, signatures, gossip, sync, txRelay, own, events } = o;
  chain.on('tip', (e) => {
    for (const block of e.connected) signatures.confirmed(block.txs);
    void mempool
      .update(e.connected, e.disconnected, o.clock())
      .then(() => regossip(o, e.disconnected))
      // A block of a catch-up is old news: what it passed over says nothing of today's miners.
      .then(() => (sync.syncing || e.connected.length === 0 ? undefined : txRelay.pushPassedOver(e.connected.at(-1)!)))
      .catch((err: Error) => events.emit('log', 'warn', `mempool update after a new tip failed: ${err.message}`, { stack: err.stack }));
    if (e.disconnected.length > 0) {
      // Which tips, not only how many blocks: what an operator compares with other nodes and explorers.
      events.emit('log', 'info', 'reorganised', { fork: e.fork.height, forkHash: e.fork.hashHex, disconnected: e.disconnected.length, connected: e.connected.length, from: e.from.hashHex, to: e.to.hashHex, height: e.to.height });
    }
  });
  // What the pool admitted at genesis was judged against the genesis state, not the snapshot's.
  chain.on('adopted', () => {
    void mempool.recheckAll().catch((err: Error) => events.emit('log', 'warn', `mempool recheck after a snapshot failed: ${err.message}`, { stack: err.stack }));
  });
  chain.on('connect', (block, entry) => {
    own.connected(block, entry.hashHex);
    events.emit('block', block, own.has(entry.hashHex) ? 'mined' : 'received');
  });
  chain.on('invalid', (entry, err) => events.emit('log', 'warn', `invalid block ${entry.hashHex} at ${entry.height}: ${err.message}`));
  gossip.on('orphan', (peer) => void sync.handshake(peer, true));
  gossip.on('connected', (peer, hash) => sync.peerHas(peer, hash));
  // A chain taken by sync (an orphan's branch, a catch-up) is announced as its tip: gossip
  // forwards only what it connected itself, so peers reached through this node would otherwise
  // hear of it at their next status poll, 15 s a hop, and mine rival blocks meanwhile.
  sync.on('took', () => void announceTip(o));
  // The block itself is logged as invalid by the chain; this says who brought it, and why no penalty.
  gossip.on('failed', (peer, err) => events.emit('log', 'info', 'a compact block whose header held failed its import: its miner\'s fault, the peer that forwarded it is not penalised', { peer, reason: (err as Error).message }));
}

/**
 * Transactions of blocks a reorganisation took away are back in our mempool, but the peers on
 * the winning side may never have seen them: push them so they get mined.
 */
async function regossip(o: BlockEventParts, disconnected: readonly Block[]): Promise<void> {
  const back = disconnected.flatMap((b) => b.txs).filter((tx) => o.mempool.has(tx.id));
  await o.txRelay.pushToAll(back);
}

/** Publishes our tip's block: peers that have it ignore it. */
async function announceTip(o: BlockEventParts): Promise<void> {
  const block = await o.db.getBlock(o.chain.tip.hash).catch(() => undefined);
  if (block && block.header.height > 0) await o.gossip.publishWholeBlock(block).catch(() => {});
}
