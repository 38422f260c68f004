import { bytesEqual } from '../../ledger/bytes.ts';
import { DecodeError, ProofError } from '../../ledger/errors.ts';
import type { BlockHeader } from '../../ledger/block.ts';
import type { Account } from '../../ledger/state.ts';
import { verifyAccountProof } from '../../ledger/smt-proof.ts';
import type { PeerManager } from '../peers.ts';
import { TransportError, type RequestLimits } from '../transport.ts';
import type { Status } from '../wire.ts';
import { MAX_PROOFS_ANSWER_BYTES } from './serve.ts';
import { decodeProofs, encodeGetProofs } from './wire.ts';
import type { ProverOrder } from './prover-order.ts';

const PROOFS_TIMEOUT_MS = 10_000;
/** A proof that does not hold: a ban. */
const LIE = 100;
/** No proof at the very tip it announced ("unknown block", "too deep"), with no heavier chain to show for it since. */
const WITHHELD = 25;
/** Why a peer that announced our tip had no proof at it: its chain moved on, to one with more work. */
export const REORGANISED = 'its chain moved on from our tip since its status';
/** Peers asked at once for a proof: as each fails to prove, the next is asked. */
const MAX_PROVERS = 8;


/** A peer to ask for a proof, and whether its last status named our tip (then no proof at it is withholding). */
export interface Prover {
  readonly peer: string;
  readonly announcedOurTip: boolean;
}

/**
 * The peers that can prove against our tip: those not banned whose chain has at least its work,
 * those that announced the tip itself first, then in `order` (node/light/prover-order.ts). Asking
 * them at once (proveFromAny) costs a few small requests and finds a liar at the first question it
 * lies to.
 */
export function chooseProvers(statuses: ReadonlyMap<string, Status>, peers: PeerManager, tip: BlockHeader, tipWork: bigint, order: ProverOrder): Prover[] {
  const provers = [...statuses]
    .filter(([peer, s]) => !peers.isBanned(peer) && s.totalWork >= tipWork)
    .map(([peer, s]) => ({ peer, announcedOurTip: bytesEqual(s.tipHash, tip.hash) }));
  return order.sort(provers, (p) => p.announcedOurTip);
}

/**
 * One peer's proof of the account at `address` in `tip`'s state, checked against its state root;
 * or why there is none, the peer punished where it lied. `request` waits out busy answers;
 * `statusNow` asks the peer's status again (and follows its chain if it claims more work).
 *
 * "Unknown block" for the tip a peer announced is what an honest full node answers when its chain
 * reorganised in between, and "too deep" when it moved more than PROOF_DEPTH blocks past it, in
 * either case to a chain with more work, which its status then names: that costs nothing (a claim
 * its headers do not back is a ban, by the sync it starts). A status that still names our tip, or
 * no heavier chain, is withholding (no status at all shows nothing, and costs nothing): peers that announced our tip are asked first, and one that
 * answers no proof at it for free could keep honest provers from being asked at all.
 */
export async function proofFrom(
  request: (peer: string, message: Uint8Array, limits: RequestLimits) => Promise<Uint8Array>,
  statusNow: (peer: string) => Promise<Status | undefined>,
  peers: PeerManager,
  { peer, announcedOurTip }: Prover,
  tip: { readonly header: BlockHeader; readonly totalWork: bigint },
  address: Uint8Array,
): Promise<{ account: Account | undefined } | string> {
  try {
    const bytes = await request(peer, encodeGetProofs(tip.header.hash, [address]), { timeoutMs: PROOFS_TIMEOUT_MS, maxBytes: MAX_PROOFS_ANSWER_BYTES });
    const answer = decodeProofs(bytes, 1);
    if (answer.kind !== 'proofs') {
      if (!announcedOurTip) return answer.kind;
      const status = await statusNow(peer);
      // No status (a timeout, the connection gone, our own crash or stop): nothing shows it withheld.
      if (!status) return answer.kind;
      if (!bytesEqual(status.tipHash, tip.header.hash) && status.totalWork > tip.totalWork) return REORGANISED;
      peers.penalize(peer, WITHHELD, `gave no proof at the tip it announced (${answer.kind})`);
      return answer.kind;
    }
    return { account: verifyAccountProof(tip.header.stateRoot, address, answer.proofs[0]!) };
  } catch (err) {
    if (err instanceof ProofError || err instanceof DecodeError) {
      peers.penalize(peer, LIE, `served a proof that does not hold against the state root of block ${tip.header.height}: ${err.message}`);
      return 'a proof that does not hold';
    }
    // A frame over its cap (TRANSPORT_BAD_FRAME); a timeout or a closed connection costs nothing.
    if (err instanceof TransportError && err.banScore > 0) peers.penalize(peer, err.banScore, `proofs: ${err.message}`);
    return (err as Error).message;
  }
}

type Answer = { account: Account | undefined } | string;

/**
 * The account as the first of `provers` whose proof holds proves it, as soon as it comes (a peer
 * that answers late, or never, holds up no answer); or, when none holds, every prover's answer, in
 * the provers' order. At most MAX_PROVERS are asked at once, and as each fails to prove the next
 * is asked: identities that never prove (busy, which is no fault, or slow) must not keep the
 * honest provers after them waiting for the slowest of a whole batch.
 */
export function proveFromAny(provers: readonly Prover[], prove: (prover: Prover) => Promise<Answer>): Promise<{ peer: string; account: Account | undefined } | Answer[]> {
  const answers: Answer[] = new Array<Answer>(provers.length);
  return new Promise((resolve) => {
    let next = 0;
    let failed = 0;
    let proven = false;
    const ask = () => {
      const i = next++;
      const answered = (a: Answer) => {
        answers[i] = a;
        if (proven) return;
        if (typeof a !== 'string') {
          proven = true;
          return resolve({ peer: provers[i]!.peer, account: a.account });
        }
        if (++failed === provers.length) return resolve(answers);
        if (next < provers.length) ask();
      };
      prove(provers[i]!).then(answered, (err: unknown) => answered((err as Error)?.message ?? String(err)));
    };
    if (provers.length === 0) return resolve(answers);
    while (next < Math.min(MAX_PROVERS, provers.length)) ask();
  });
}
