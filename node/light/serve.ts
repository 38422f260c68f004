import type { Chain } from '../../consensus/chain.ts';
import { bytesEqual } from '../../ledger/bytes.ts';
import { proveAccountsAt } from '../../consensus/state-proofs.ts';
import type { NetworkNames } from '../protocols.ts';
import type { Env } from '../env.ts';
import type { Serve } from '../serving.ts';
import { MAX_PROOF_ADDRESSES, MAX_PROOF_BYTES, PROOF_DEPTH, decodeGetProofs, encodeProofs } from './wire.ts';

const TIMEOUT_MS = 10_000;
/**
 * Proof requests being made at once, all askers together. Each asker may have one in flight, and
 * identities cost nothing. A proof below the tip holds the import lock only while it pins the
 * tip's state (consensus/state-proofs.ts), but its roll-back is main-thread work that imports then
 * share the thread with: up to PROOF_DEPTH blocks' changes (5-8 s for 16 blocks of 4,000
 * transactions, measured).
 */
export const MAX_PROOFS_AT_ONCE = 1;
/**
 * Time proofs may take, all askers together: this burst, then this share of the time. A proof
 * near the tip takes a millisecond or less; one far back may take seconds of the main thread, and
 * pays for them.
 */
export const PROOF_TIME_BURST_MS = 2_000;
export const PROOF_TIME_SHARE = 1 / 4;
/** The least retry-after of a proof request refused for the node's bounds (not the asker's budget): it may ask another node. */
export const PROOFS_BUSY_RETRY_MS = 500;
/** The request frame cap (docs/PROTOCOL.md, the framing table). */
export const GET_PROOFS_MAX_BYTES = 64 + MAX_PROOF_ADDRESSES * 20;

/**
 * What a full node serves light clients alone (docs/PROTOCOL.md, "Light clients"): account proofs
 * against the state root of a main-chain block near its tip. (Headers by height are the sync
 * protocol's getHeaderRange, which node/chain-server.ts serves to every peer from the windowed
 * by-height store.) A proof below the tip rolls the tip's state back, pinned between two imports,
 * while imports go on; a peer may have one in flight at a time (its budget's in-flight limit: a
 * second is answered busy), the node as a whole one at a time, and within a share of the time
 * (busy past them), and it reaches back at most PROOF_DEPTH blocks, never below what a pruned node
 * keeps the undo data of. It is served within the asker's budgets (node/serving.ts), as every
 * request protocol is.
 */
export async function serveLightClients(chain: Chain, serve: Serve, names: NetworkNames, env: Pick<Env, 'monotonic'>, onBadRequest: (peer: string, err: unknown) => void): Promise<void> {
  let underWay = 0;
  let timeCredit = PROOF_TIME_BURST_MS;
  let creditAt = env.monotonic();
  await serve(
    'proofs',
    names.proofs,
    async (req) => {
      const { blockHash, addresses } = decodeGetProofs(req);
      const now = env.monotonic();
      timeCredit = Math.min(PROOF_TIME_BURST_MS, timeCredit + Math.max(0, now - creditAt) * PROOF_TIME_SHARE);
      creditAt = Math.max(creditAt, now);
      // A proof at our tip rolls nothing back (a millisecond or less) and is what light clients ask
      // for: it is not held back by the time deeper ones took, or one asker's proof 16 blocks back
      // every ~25 s would have every light client of this node refused. Its time is still counted.
      const atTip = bytesEqual(blockHash, chain.tip.hash);
      if (underWay >= MAX_PROOFS_AT_ONCE || (timeCredit <= 0 && !atTip)) return { busy: true, retryAfterMs: Math.max(PROOFS_BUSY_RETRY_MS, Math.ceil(-timeCredit / PROOF_TIME_SHARE)) };
      underWay++;
      const start = env.monotonic();
      try {
        return await proofsAnswer(chain, blockHash, addresses);
      } finally {
        timeCredit -= env.monotonic() - start;
        underWay--;
      }
    },
    { timeoutMs: TIMEOUT_MS, maxBytes: GET_PROOFS_MAX_BYTES, onBadRequest },
  );
}

/** The answer to getProofs: the block found, then its proofs (which pause imports only to pin the state). */
async function proofsAnswer(chain: Chain, blockHash: Uint8Array, addresses: readonly Uint8Array[]): Promise<Uint8Array> {
  // Found between two imports: mid-way through a reorganisation the main chain ends at the fork point.
  const header = await chain.withImportsPaused(() => chain.byHeight.mainHeader(blockHash));
  if (!header) return encodeProofs({ kind: 'unknown-block' });
  const proofs = await proveAccountsAt(chain, header, addresses, PROOF_DEPTH);
  // A pruned node's limit is a depth too: the light client asks a node that keeps more.
  if (proofs === 'too-deep' || proofs === 'pruned') return encodeProofs({ kind: 'too-deep' });
  if (proofs === 'not-on-main-chain') return encodeProofs({ kind: 'unknown-block' });
  return encodeProofs({ kind: 'proofs', proofs });
}

/** The largest answer to getProofs: what a light client caps its read at. */
export const MAX_PROOFS_ANSWER_BYTES = 16 + MAX_PROOF_ADDRESSES * (3 + MAX_PROOF_BYTES);
