import { bytesEqual, toHex } from '../ledger/bytes.ts';
import { BlockRuleError, type CairnError } from '../ledger/errors.ts';
import { decodeBlock } from '../ledger/block.ts';
import type { Chain } from '../consensus/chain.ts';
import { checkBlockSanity, type SaneBlock } from '../consensus/sanity.ts';
import { LIE, PeerFault } from './header-sync.ts';
import { InvalidChain } from './body-download.ts';
import type { NetworkNames } from './protocols.ts';
import type { BusyMemory, Transport } from './transport.ts';
import { encodeGetBlocks } from './wire.ts';

const BLOCKS_TIMEOUT_MS = 20_000;

/**
 * A batch of bodies from one provider (a sync's, a history check's): each must be the block asked
 * for and match its header, or the provider lied; a block that breaks any other rule is the
 * chain's fault, its header peer's (InvalidChain). A busy answer is remembered (`busy`).
 */
export async function fetchBodiesFrom(
  o: { readonly transport: Transport; readonly names: NetworkNames; readonly chain: Pick<Chain, 'params'>; readonly busy: BusyMemory },
  peer: string,
  hashes: readonly Uint8Array[],
): Promise<SaneBlock[]> {
  const { transport, names, chain } = o;
  const frames = await o.busy.ask(peer, names.blocks, () =>
    transport.requestMany(peer, names.blocks, encodeGetBlocks(hashes), hashes.length, { timeoutMs: BLOCKS_TIMEOUT_MS, maxBytes: chain.params.maxBlockBytes }),
  );
  return frames.map((bytes, i) => {
    const block = decodeBlock(bytes);
    if (!bytesEqual(block.header.hash, hashes[i]!)) throw new PeerFault(`sent block ${toHex(block.header.hash)} for ${toHex(hashes[i]!)}`, LIE);
    try {
      return checkBlockSanity(block, chain.params);
    } catch (err) {
      if (err instanceof BlockRuleError && err.code === 'BLOCK_BAD_MERKLE_ROOT') {
        throw new PeerFault(`sent a body that does not match the header of ${toHex(block.header.hash)}`, LIE);
      }
      throw new InvalidChain(err as CairnError, block.header.height);
    }
  });
}
