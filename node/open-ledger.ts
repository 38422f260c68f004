import { ChainDB } from '../ledger/chaindb.ts';
import { AddressIndex, addressIndexer } from '../ledger/address-index.ts';
import { Mempool } from '../ledger/mempool.ts';
import { Chain, type Clock } from '../consensus/chain.ts';
import type { Env } from './env.ts';
import { Pruner } from './pruner.ts';
import { DEFAULT_SNAPSHOT_INTERVAL, snapshotPruneLimit } from './snapshots.ts';
import { TxSignatureVerifier } from './tx-signatures.ts';
import { holdCheckpoint } from './checkpoint.ts';
import type { LogLevel, NodePartsOf } from './node-types.ts';

/** What a node keeps of the chain, before any peer is met: the parts of a start that touch no network. */
export interface OpenedLedger {
  readonly db: ChainDB;
  readonly addressIndex: AddressIndex | undefined;
  readonly signatures: TxSignatureVerifier;
  readonly chain: Chain;
  readonly mempool: Mempool;
  readonly pruner: Pruner | undefined;
  /** The checkpoint held is not the one kept from the last start (node/checkpoint.ts). */
  readonly checkpointRenewed: boolean;
}

export interface OpenLedgerHooks {
  readonly env: Env;
  readonly clock: Clock;
  readonly log: (level: LogLevel, message: string, fields?: Record<string, unknown>) => void;
  /** The store refused a write: the node fails. */
  readonly fail: (err: Error) => void;
  /** The store is open: told at once, so that a start that ends later (a stop, a refused checkpoint) closes it. */
  readonly opened: (db: ChainDB) => void;
  /** Between two steps: a stop asked meanwhile ends the start here (CairnNode.start). */
  readonly goOn: (after: string) => void;
}

/**
 * Opens the store and the chain on it (holding the checkpoint), the mempool over them, and the
 * pruner. The operator is told when the last stop was not clean: the start was slower for it.
 */
export async function openLedger(p: NodePartsOf<never>, o: OpenLedgerHooks): Promise<OpenedLedger> {
  // A connected block's batch is built on the next turn of the event loop, after its connection
  // has been announced and relayed.
  const db = await ChainDB.open(await p.openStore(), p.params, {
    scheduleFlush: (start) => o.env.defer(start),
    indexers: p.addressIndex ? [addressIndexer] : [],
    cachedTreeNodes: p.cachedTreeNodes,
    onWriteFailed: o.fail,
  });
  o.opened(db);
  o.goOn('the store open');
  const addressIndex = p.addressIndex ? await AddressIndex.open(db) : undefined;
  if (!p.addressIndex) await AddressIndex.turnOff(db);
  const signatures = new TxSignatureVerifier(p.verifier);
  const kept = p.checkpointStore?.read();
  const chain = await Chain.open(db, { clock: o.clock, signatures, orphanLimits: p.orphanLimits, reorgDepth: p.reorgDepth, window: p.window, stopwatch: p.stopwatch, checkpoint: p.checkpoint ?? kept });
  const checkpointRenewed = await holdCheckpoint(chain, p.checkpointStore, p.checkpoint, kept);
  o.goOn('the chain open');
  // A clean stop leaves the tree's top for the next start; without it the start was slower, and
  // the blocks whose writes were still queued are fetched again: the operator is told why.
  if (db.resumedInstall) o.log('warn', 'a kill cut short the install of a snapshot\'s state: the install was finished, and the node goes on from its block', { height: chain.tip.height });
  else if (db.topFrom === 'scan' && chain.tip.height > 0) {
    o.log('warn', "the last stop was not clean (a kill, a crash, a power cut): the state tree's top was rebuilt from the store, and the chain goes on from the last block it had committed", { height: chain.tip.height });
  }
  const mempool = new Mempool(db, p.params, p.mempool, (tx) => signatures.checkTx(tx), (txs) => signatures.preverify(txs));
  const pruner =
    p.pruneKeep === undefined
      ? undefined
      : new Pruner(
          chain,
          o.env,
          p.pruneKeep,
          (height, err) => (err ? o.log('warn', `pruning stopped at ${height}: ${err.message}`) : o.log('debug', 'pruned', { height })),
          // The address index's backfill reads bodies; a node serving snapshots keeps the lowest one's.
          () => {
            const index = addressIndex?.status();
            const backfill = index && index.state === 'building' ? index.next - 1 : Infinity;
            const serving = p.serveSnapshots === false ? Infinity : snapshotPruneLimit(chain.tip.height, p.snapshotInterval ?? DEFAULT_SNAPSHOT_INTERVAL, chain.reorgDepth);
            return Math.min(backfill, serving);
          },
        );
  return { db, addressIndex, signatures, chain, mempool, pruner, checkpointRenewed };
}
