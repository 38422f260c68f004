import { CairnError, DecodeError } from '../ledger/errors.ts';
import type { Mempool } from '../ledger/mempool.ts';
import type { Transaction } from '../ledger/transaction.ts';
import { verdictFor } from './transport.ts';
import type { TxSignatureVerifier } from './tx-signatures.ts';
import { decodeTxBatch } from './wire.ts';

/** Mempool refusals that a block not yet in may lift: its sender's funds, its earlier nonces. */
const LIFTED_BY_A_BLOCK = new Set(['MEMPOOL_INSUFFICIENT_BALANCE', 'MEMPOOL_NONCE_GAP']);

export interface TxBatchParts {
  readonly mempool: Mempool;
  readonly signatures: TxSignatureVerifier;
  readonly clock: () => number;
}

/**
 * A gossiped batch of transactions: the new ones' signatures checked together on the pool, then
 * all admitted in order, in one turn of the mempool. Throws the first that is its sender's offence
 * (one forged transaction spoils the message: nothing after it is admitted); returns how many
 * entered.
 *
 * A forwarder relays a transaction once the block it builds on (one that funds its sender, or
 * holds its earlier nonces) is in there; that block may have reached us first, relayed before its
 * import, and still be on its way in here (`blocksArriving`). Gossip delivers a message once: what
 * such a block would let in is tried again when it is in, or lost.
 */
export async function admitTxBatch(o: TxBatchParts, data: Uint8Array, blocksArriving: () => Promise<void> | undefined): Promise<number> {
  const txs = decodeTxBatch(data);
  if (txs.length === 0) throw new DecodeError('DECODE_NON_CANONICAL', 'an empty transaction batch');
  const first = await admit(o, txs.filter((tx) => !o.mempool.has(tx.id)));
  const arriving = first.awaitingBlock.length > 0 ? blocksArriving() : undefined;
  if (!arriving) return first.admitted;
  await arriving;
  return first.admitted + (await admit(o, first.awaitingBlock)).admitted;
}

/** Admits `fresh` in order: how many entered, and those refused for what a block may lift. */
async function admit(o: TxBatchParts, fresh: readonly Transaction[]): Promise<{ admitted: number; awaitingBlock: Transaction[] }> {
  await o.signatures.preverifyFromPeer(await o.mempool.worthVerifying(fresh));
  const outcomes = await o.mempool.addMany(fresh, o.clock(), (refusal) => verdictFor(refusal) === 'reject');
  let admitted = 0;
  const awaitingBlock: Transaction[] = [];
  for (let i = 0; i < outcomes.length; i++) {
    const outcome = outcomes[i]!;
    if (!(outcome instanceof Error)) admitted++;
    else if (verdictFor(outcome) === 'reject') throw outcome;
    else if (outcome instanceof CairnError && LIFTED_BY_A_BLOCK.has(outcome.code)) awaitingBlock.push(fresh[i]!);
  }
  return { admitted, awaitingBlock };
}
