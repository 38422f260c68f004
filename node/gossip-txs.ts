import { CairnError, DecodeError } from '../ledger/errors.ts';
import type { Mempool } from '../ledger/mempool.ts';
import type { Chain } from '../consensus/chain.ts';
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
  readonly chain: Pick<Chain, 'reorganisationUnderWay' | 'untilSettled'>;
}

/**
 * A gossiped batch of transactions: the new ones' signatures checked together on the pool, then
 * all admitted in order, in one turn of the mempool. Throws the first that is its sender's offence
 * (one forged transaction spoils the message: nothing after it is admitted); returns those that
 * entered, and whether they were the whole batch (every transaction of it, each once).
 *
 * Only a batch that entered whole is forwarded as it came: one new transaction among 999 others
 * already pending would otherwise ride the whole batch through every node's mesh, 166 KB for one
 * fee. What entered of any other batch the node relays itself, in a batch of its own.
 *
 * A forwarder relays a transaction once the block it builds on (one that funds its sender, or
 * holds its earlier nonces) is in there; that block may have reached us first, relayed before its
 * import, and still be on its way in here (`blocksArriving`). Gossip delivers a message once: what
 * such a block would let in is tried again when it is in, or lost. So is what a reorganisation
 * under way refused: mid-way the state is the fork point's, without the funds and nonces that both
 * chains give (gossipsub awaits a validator without a deadline, and the block that made the
 * reorganisation holds its own validation as long).
 */
export async function admitTxBatch(
  o: TxBatchParts,
  data: Uint8Array,
  blocksArriving: () => Promise<void> | undefined,
): Promise<{ admitted: Transaction[]; whole: boolean }> {
  const txs = decodeTxBatch(data);
  if (txs.length === 0) throw new DecodeError('DECODE_NON_CANONICAL', 'an empty transaction batch');
  const first = await admit(o, txs.filter((tx) => !o.mempool.has(tx.id)));
  const lifting = first.awaitingBlock.length > 0 ? liftingRefusals(o, blocksArriving) : undefined;
  const admitted = lifting ? [...first.admitted, ...(await lifting.then(() => admit(o, first.awaitingBlock))).admitted] : first.admitted;
  return { admitted, whole: admitted.length === txs.length };
}

/**
 * What may lift a refusal just made for funds or nonces, if anything: the blocks arriving, and a
 * reorganisation the admission met, under way or ended meanwhile (the pool follows it still).
 */
function liftingRefusals(o: TxBatchParts, blocksArriving: () => Promise<void> | undefined): Promise<void> | undefined {
  const arriving = blocksArriving();
  const met = reorganisationMet(o);
  return met ? Promise.all([arriving, met]).then(() => undefined) : arriving;
}

/**
 * If admission may have met a reorganisation (one under way, or ended while the pool still follows
 * it), what resolves once none is under way: refusals for funds or nonces made meanwhile were
 * judged against the fork point's state, and are worth trying again then (a peer's push too).
 */
export function reorganisationMet(o: Pick<TxBatchParts, 'chain' | 'mempool'>): Promise<void> | undefined {
  if (!o.chain.reorganisationUnderWay && !o.mempool.followingReorganisation) return undefined;
  return o.chain.untilSettled();
}

/** Whether a block not yet in (or a reorganisation's end) may lift `refusal`: its sender's funds, its earlier nonces. */
export function liftedByABlock(refusal: Error): boolean {
  return refusal instanceof CairnError && LIFTED_BY_A_BLOCK.has(refusal.code);
}

/** Admits `fresh` in order: those that entered, and those refused for what a block may lift. */
async function admit(o: TxBatchParts, fresh: readonly Transaction[]): Promise<{ admitted: Transaction[]; awaitingBlock: Transaction[] }> {
  await o.signatures.preverifyFromPeer(await o.mempool.worthVerifying(fresh));
  const outcomes = await o.mempool.addMany(fresh, o.clock(), (refusal) => verdictFor(refusal) === 'reject');
  const admitted: Transaction[] = [];
  const awaitingBlock: Transaction[] = [];
  for (let i = 0; i < outcomes.length; i++) {
    const outcome = outcomes[i]!;
    if (!(outcome instanceof Error)) admitted.push(fresh[i]!);
    else if (verdictFor(outcome) === 'reject') throw outcome;
    else if (liftedByABlock(outcome)) awaitingBlock.push(fresh[i]!);
  }
  return { admitted, awaitingBlock };
}
