import type { Chain } from '../../consensus/chain.ts';
import { proveAccountsAt } from '../../consensus/state-proofs.ts';
import type { NetworkNames } from '../protocols.ts';
import type { Serve } from '../serving.ts';
import { MAX_PROOF_ADDRESSES, MAX_PROOF_BYTES, PROOF_DEPTH, decodeGetProofs, encodeProofs } from './wire.ts';

const TIMEOUT_MS = 10_000;
/** The request frame cap (docs/PROTOCOL.md, the framing table). */
export const GET_PROOFS_MAX_BYTES = 64 + MAX_PROOF_ADDRESSES * 20;

/**
 * What a full node serves light clients alone (docs/PROTOCOL.md, "Light clients"): account proofs
 * against the state root of a main-chain block near its tip. (Headers by height are the sync
 * protocol's getHeaderRange, which node/chain-server.ts serves to every peer from the windowed
 * by-height store.) A proof request runs between two imports (the tip and its tree must hold
 * still), so a peer may have one in flight at a time (its budget's in-flight limit: a second is
 * answered busy), and it reaches back at most PROOF_DEPTH blocks, never below what a pruned node
 * keeps the undo data of. It is served within the asker's budgets (node/serving.ts), as every
 * request protocol is.
 */
export async function serveLightClients(chain: Chain, serve: Serve, names: NetworkNames, onBadRequest: (peer: string, err: unknown) => void): Promise<void> {
  await serve(
    'proofs',
    names.proofs,
    async (req) => {
      const { blockHash, addresses } = decodeGetProofs(req);
      return chain.withImportsPaused(async () => {
        const header = await chain.byHeight.mainHeader(blockHash);
        if (!header) return encodeProofs({ kind: 'unknown-block' });
        const proofs = await proveAccountsAt(chain, header, addresses, PROOF_DEPTH);
        // A pruned node's limit is a depth too: the light client asks a node that keeps more.
        if (proofs === 'too-deep' || proofs === 'pruned') return encodeProofs({ kind: 'too-deep' });
        if (proofs === 'not-on-main-chain') return encodeProofs({ kind: 'unknown-block' });
        return encodeProofs({ kind: 'proofs', proofs });
      });
    },
    { timeoutMs: TIMEOUT_MS, maxBytes: GET_PROOFS_MAX_BYTES, onBadRequest },
  );
}

/** The largest answer to getProofs: what a light client caps its read at. */
export const MAX_PROOFS_ANSWER_BYTES = 16 + MAX_PROOF_ADDRESSES * (3 + MAX_PROOF_BYTES);
