import { CairnError, DecodeError } from '../ledger/errors.ts';
import type { Mempool } from '../ledger/mempool.ts';
import { MempoolFullError } from '../ledger/mempool-rules.ts';
import type { Chain } from '../consensus/chain.ts';
import type { Transaction } from '../ledger/transaction.ts';
import { verdictFor } from './transport.ts';
import type { TxSignatureVerifier } from './tx-signatures.ts';
import type { StopGate } from './stop-gate.ts';
import { MAX_TXS_PER_BATCH, decodeTxBatch } from './wire.ts';

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
 * such a block would let in is tried again when it is in, or lost. So is what was refused while a
 * reorganisation was under way (the state then is the fork point's, without the funds and nonces
 * both chains give), but after the message's validation (`afterReorganisation`): one may take many
 * seconds, and gossipsub counts a message it asked for (IWANT) and validated more than 3 s later as
 * its sender's broken promise, a behaviour penalty that past a few bans an honest peer. `park` is
 * told when what is left of the batch only waits for such blocks.
 */
export async function admitTxBatch(
  o: TxBatchParts,
  data: Uint8Array,
  blocksArriving: () => Promise<void> | undefined,
  park: () => void = () => {},
): Promise<{ admitted: Transaction[]; whole: boolean; afterReorganisation?: { txs: Transaction[]; until: Promise<void> } }> {
  const txs = decodeTxBatch(data);
  if (txs.length === 0) throw new DecodeError('DECODE_NON_CANONICAL', 'an empty transaction batch');
  const first = await admit(o, txs.filter((tx) => !o.mempool.has(tx.id)));
  const met = first.awaitingBlock.length > 0 ? reorganisationMet(o) : undefined;
  if (met) return { admitted: first.admitted, whole: false, afterReorganisation: { txs: first.awaitingBlock, until: Promise.all([blocksArriving(), met]).then(() => undefined) } };
  const arriving = first.awaitingBlock.length > 0 ? blocksArriving() : undefined;
  // What is left only waits: the sender's other batches need not wait behind it (tx-batch-turns.ts).
  if (arriving) park();
  const admitted = arriving ? [...first.admitted, ...(await arriving.then(() => admit(o, first.awaitingBlock))).admitted] : first.admitted;
  return { admitted, whole: admitted.length === txs.length };
}

/**
 * If admission may have met a reorganisation (one under way, or ended while the pool still follows
 * it), what resolves once none is under way: refusals for funds or nonces made meanwhile were
 * judged against the fork point's state, and are worth trying again then.
 */
export function reorganisationMet(o: Pick<TxBatchParts, 'chain' | 'mempool'>): Promise<void> | undefined {
  if (!o.chain.reorganisationUnderWay && !o.mempool.followingReorganisation) return undefined;
  return o.chain.untilSettled();
}

/**
 * Whether a block not yet in (or a reorganisation's end) may lift `refusal`: its sender's funds, its
 * earlier nonces (also a full pool's refusal of one that waits for them).
 */
export function liftedByABlock(refusal: Error): boolean {
  if (refusal instanceof MempoolFullError) return refusal.waitsForEarlierNonce;
  return refusal instanceof CairnError && LIFTED_BY_A_BLOCK.has(refusal.code);
}

/**
 * At most this many transactions of peers' batches and pushes wait for a reorganisation to end
 * (a few MB): what a peer sends for nothing (unfunded senders, nonces far ahead) is refused mid-way
 * as it is after, and a reorganisation thousands of blocks deep lasts long enough to gather a lot.
 */
export const MAX_TXS_AFTER_REORGANISATION = 10 * MAX_TXS_PER_BATCH;
/**
 * Of those, at most this many from one address group (its identities together): free junk from one
 * peer filled the whole list during any reorganisation, and honest transactions refused mid-way
 * after it were then dropped.
 */
export const MAX_TXS_AFTER_REORGANISATION_PER_GROUP = MAX_TXS_AFTER_REORGANISATION / 4;

/**
 * Transactions of peers' batches and pushes refused for funds or nonces mid-way through a
 * reorganisation, tried again once it has ended, apart from the message or push that brought them
 * (admitTxBatch says why); what enters then is relayed by this node, and the first offence is its
 * peer's, as it would have been at once.
 */
export class AfterReorganisation {
  private readonly o: TxBatchParts;
  /** Gossip's: the stop waits for what is tried again, or finds it before it begins. */
  private readonly gate: StopGate;
  private readonly tell: { readonly admitted: (peer: string, txs: readonly Transaction[]) => void; readonly offence: (peer: string, err: unknown) => void };
  /** The address group a peer sends from (tx-batch-turns.ts senderGroup). */
  private readonly groupOf: (peer: string) => string;
  private waiting = 0;
  private readonly waitingByGroup = new Map<string, number>();

  constructor(o: TxBatchParts, gate: StopGate, tell: AfterReorganisation['tell'], groupOf: (peer: string) => string) {
    this.o = o;
    this.gate = gate;
    this.tell = tell;
    this.groupOf = groupOf;
  }

  /**
   * Tries `txs` of `peer` again once `until` resolves; drops them if they would take the list past
   * MAX_TXS_AFTER_REORGANISATION, or its group's past MAX_TXS_AFTER_REORGANISATION_PER_GROUP.
   * `group` as it was when the batch came: once its sender hung up, its subnet is no longer known,
   * and each address of one /24 would have had a share of its own.
   */
  add(peer: string, txs: readonly Transaction[], until: Promise<void>, group = this.groupOf(peer)): void {
    const ofGroup = this.waitingByGroup.get(group) ?? 0;
    if (this.waiting + txs.length > MAX_TXS_AFTER_REORGANISATION || ofGroup + txs.length > MAX_TXS_AFTER_REORGANISATION_PER_GROUP) return;
    this.waiting += txs.length;
    this.waitingByGroup.set(group, ofGroup + txs.length);
    const retried = until
      .then(() => (this.gate.stopped ? undefined : admit(this.o, txs)))
      .then(
        (outcome) => {
          if (outcome && outcome.admitted.length > 0) this.tell.admitted(peer, outcome.admitted);
        },
        (err: unknown) => this.tell.offence(peer, err),
      )
      .finally(() => {
        this.waiting -= txs.length;
        const left = this.waitingByGroup.get(group)! - txs.length;
        if (left > 0) this.waitingByGroup.set(group, left);
        else this.waitingByGroup.delete(group);
      });
    void this.gate.track(retried);
  }
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
