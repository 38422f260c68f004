import type { Chain } from '../../consensus/chain.ts';
import { proveAccountsAt } from '../../consensus/state-proofs.ts';
import { encodeHeaders } from '../wire.ts';
import type { NetworkNames } from '../protocols.ts';
import type { Serve } from '../serving.ts';
import { MAX_PROOF_ADDRESSES, MAX_PROOF_BYTES, MAX_RANGE_HEADERS, PROOF_DEPTH, decodeGetHeaderRange, decodeGetProofs, encodeProofs } from './wire.ts';

const TIMEOUT_MS = 10_000;
/** The request frame caps (docs/PROTOCOL.md, the framing table). */
export const GET_HEADER_RANGE_MAX_BYTES = 16;
export const GET_PROOFS_MAX_BYTES = 64 + MAX_PROOF_ADDRESSES * 20;

/**
 * What a full node serves light clients (docs/PROTOCOL.md, "Light clients"): main-chain headers by
 * height, and account proofs against the state root of a main-chain block near its tip. A proof
 * request runs between two imports (the tip and its tree must hold still), so a peer may have one
 * in flight at a time (its budget's in-flight limit: a second is answered busy), and it reaches
 * back at most PROOF_DEPTH blocks. Both are served within the
 * asker's budgets (node/serving.ts), as every request protocol is.
 */
export async function serveLightClients(chain: Chain, serve: Serve, names: NetworkNames, onBadRequest: (peer: string, err: unknown) => void): Promise<void> {
  await serve(
    'headerRange',
    names.headerRange,
    async (req) => {
      const { from, count } = decodeGetHeaderRange(req);
      const headers = [];
      for (let h = from; h < from + Math.min(count, MAX_RANGE_HEADERS); h++) {
        const entry = chain.mainAt(h);
        if (!entry) break;
        headers.push(entry.header);
      }
      return encodeHeaders(headers);
    },
    { timeoutMs: TIMEOUT_MS, maxBytes: GET_HEADER_RANGE_MAX_BYTES, onBadRequest },
  );
  await serve(
    'proofs',
    names.proofs,
    async (req) => {
      const { blockHash, addresses } = decodeGetProofs(req);
      return chain.withImportsPaused(async () => {
        const entry = chain.getEntry(blockHash);
        if (!entry || !chain.isMain(entry)) return encodeProofs({ kind: 'unknown-block' });
        const proofs = await proveAccountsAt(chain, entry, addresses, PROOF_DEPTH);
        if (proofs === 'too-deep') return encodeProofs({ kind: 'too-deep' });
        if (proofs === 'not-on-main-chain') return encodeProofs({ kind: 'unknown-block' });
        return encodeProofs({ kind: 'proofs', proofs });
      });
    },
    { timeoutMs: TIMEOUT_MS, maxBytes: GET_PROOFS_MAX_BYTES, onBadRequest },
  );
}

/** The largest answer to getProofs: what a light client caps its read at. */
export const MAX_PROOFS_ANSWER_BYTES = 16 + MAX_PROOF_ADDRESSES * (3 + MAX_PROOF_BYTES);
