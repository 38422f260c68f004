import type { Chain } from '../consensus/chain.ts';
import type { BlockIndexEntry } from '../consensus/block-index.ts';
import type { PeerManager } from './peers.ts';
import type { NetworkNames } from './protocols.ts';
import { HELD_RETRY_MS, type Serve, type ServedBlock } from './serving.ts';
import type { Busy } from './transport.ts';
import { answerHeaderRange } from './header-sync.ts';
import { encodedHeight } from '../ledger/block.ts';
import { bytesEqual } from '../ledger/bytes.ts';
import { decodeGetBlocks, decodeGetHeaders, encodeHeaders, encodeStatus, type Status } from './wire.ts';

/** Request caps, as docs/PROTOCOL.md writes them (test/spec-limits.test.ts reads them there). */
export const STATUS_REQUEST_MAX_BYTES = 1024;
/** getHeaders: 01 ‖ count (1 byte up to 64) ‖ 64 hashes ‖ max u32 = 2,054 bytes, with room to spare. */
export const GET_HEADERS_MAX_BYTES = 16 + 64 * 32 + 8;
/** getHeaderRange: 01 ‖ from u32 ‖ count u16 = 7 bytes, with room to spare. */
export const GET_HEADER_RANGE_MAX_BYTES = 16;
/** getBlocks: 01 ‖ count ‖ 64 hashes = 2,050 bytes. */
export const GET_BLOCKS_MAX_BYTES = 4096;
const SERVE_TIMEOUT_MS = 5_000;

/**
 * What the blocks responder asks the budgets (node/serving.ts) before it answers: how many of
 * these blocks the peer gets now, given which it already has (all of them: never a short answer,
 * which a syncing node takes for withholding), or busy.
 */
export type AdmitBlocks = (peer: string, blocks: readonly ServedBlock[], chainHeight: number) => number | Busy;

/**
 * Room node-wide to read `count` blocks of at most `eachBytes` each from the store (node/serving.ts
 * `roomForBlocks`): a release once the answer is cut to the asker's budgets, or undefined when the
 * node holds as many answers as it may.
 */
export type RoomForBlocks = (peer: string, count: number, eachBytes: number) => (() => void) | undefined;

export interface ChainServerOptions {
  readonly serve: Serve;
  readonly names: NetworkNames;
  readonly chain: Chain;
  readonly peers: PeerManager;
  readonly status: () => Status;
  /**
   * What a peer's status announced it has: its tip, if we know that block, with the height up to
   * which it said it holds no bodies (a snapshot-synced node's history, which it downloads).
   */
  readonly announced: (peer: string) => { readonly tip: BlockIndexEntry; readonly prunedHeight: number } | undefined;
  readonly admitBlocks?: AdmitBlocks;
  readonly roomForBlocks?: RoomForBlocks;
}

/**
 * The other half of sync: our status, headers after a locator or by height, and stored blocks, each within the
 * asker's budgets. The blocks answer tells the budgets which blocks the asker already has — the
 * ancestors of the tip it announced, above the height its status says it pruned or never had —
 * and is sent whole or answered busy, as they say.
 */
export async function serveChain(o: ChainServerOptions): Promise<void> {
  const { serve, names, chain, peers } = o;
  const onBadRequest = (peer: string, err: unknown) => peers.badRequest(peer, err);
  const limits = { timeoutMs: SERVE_TIMEOUT_MS, maxBytes: STATUS_REQUEST_MAX_BYTES, onBadRequest };
  await serve('status', names.status, async () => encodeStatus(o.status()), limits);
  await serve(
    'headers',
    names.headers,
    async (req) => {
      const { locator, max } = decodeGetHeaders(req);
      // Never mid-way through a reorganisation, as header ranges (answerHeaderRange): a chain cut at a fork point.
      return encodeHeaders(await chain.readSettled(() => chain.byHeight.headersAfter(locator, max)));
    },
    { ...limits, maxBytes: GET_HEADERS_MAX_BYTES },
  );
  // Syncing full nodes and light clients alike (node/header-sync.ts, node/light/client.ts).
  await serve('headerRange', names.headerRange, (req) => answerHeaderRange(chain, req), { ...limits, maxBytes: GET_HEADER_RANGE_MAX_BYTES });
  await serve(
    'blocks',
    names.blocks,
    async (req, peer) => {
      const hashes = decodeGetBlocks(req);
      // Room for them at their largest: the sizes are known only once read, and 64 blocks of a
      // full size for each request in flight of each asker would be many times the memory served at once.
      const release = o.roomForBlocks?.(peer, hashes.length, chain.params.maxBlockBytes);
      if (o.roomForBlocks && !release) return { busy: true, retryAfterMs: HELD_RETRY_MS };
      try {
        const stored = await chain.db.getBlocksBytes(hashes);
        const missing = stored.indexOf(undefined);
        // Up to the first we lack: the asker takes the rest from someone else.
        const frames = (missing < 0 ? stored : stored.slice(0, missing)) as Uint8Array[];
        const admitted = await admit(o, peer, hashes, frames);
        return typeof admitted === 'number' ? frames.slice(0, admitted) : admitted;
      } finally {
        release?.();
      }
    },
    { timeoutMs: SERVE_TIMEOUT_MS, maxBytes: GET_BLOCKS_MAX_BYTES, onBadRequest },
  );
}

async function admit(o: ChainServerOptions, peer: string, hashes: readonly Uint8Array[], frames: readonly Uint8Array[]): Promise<number | Busy> {
  if (!o.admitBlocks || frames.length === 0) return frames.length;
  return o.admitBlocks(peer, await placeServed(o, peer, hashes, frames), o.chain.tip.height);
}

/**
 * Each block about to be served: its size, its height, and whether the asker has it: an ancestor
 * of the tip it announced, above the height it said it pruned (a snapshot-synced node checking
 * its history asks for exactly those bodies, and counted as re-downloads they were trickled, then
 * cut off). Below the in-memory window, by the height in its header and the store's main chain:
 * placed only from the window, the chain's old history was never a re-download, and a peer could
 * take it again and again. A side branch's block has its height too, which is how the budgets
 * know a block served before: without one, asked again and again it was never a repeat.
 */
async function placeServed(o: ChainServerOptions, peer: string, hashes: readonly Uint8Array[], frames: readonly Uint8Array[]): Promise<ServedBlock[]> {
  const { chain } = o;
  const announced = o.announced(peer);
  const lacks = (height: number) => announced === undefined || height <= announced.prunedHeight;
  // Every main-chain block below the window is an ancestor of an announced tip whose own ancestor at the window's bottom is ours.
  const bottom = announced?.tip.ancestor(chain.windowBottom);
  const sharesOldChain = bottom !== undefined && chain.isMain(bottom);
  const entries = frames.map((_, i) => chain.getEntry(hashes[i]!));
  // A stored body's height was checked against its parent's before it was stored: the asker names only the hash.
  const heights = frames.map((bytes, i) => entries[i]?.height ?? encodedHeight(bytes));
  // Out of the index, a block in the window's heights is a side branch let go; below them, it is
  // the asker's if it is on the main chain, which the store is read for only when it may be.
  const mayBeTheirs = (i: number) => !entries[i] && sharesOldChain && heights[i]! < chain.windowBottom && !lacks(heights[i]!);
  const old = frames.flatMap((_, i) => (mayBeTheirs(i) ? [{ i, hash: hashes[i]!, height: heights[i]! }] : []));
  const oldTheirs = new Set((await mainBelowWindow(chain, old)).map((b) => b.i));
  return frames.map((bytes, i) => {
    const entry = entries[i];
    const theirs = entry ? !lacks(entry.height) && announced!.tip.height >= entry.height && announced!.tip.ancestor(entry.height) === entry : oldTheirs.has(i);
    return { bytes: bytes.byteLength, height: heights[i]!, theirs };
  });
}

/**
 * Those of `old` (blocks below the window, by their headers' heights) on the main chain. A syncing
 * peer asks for consecutive heights: one range read of the main chain's hashes across them, not a
 * read a block. Heights a hostile asker spreads apart are read one by one, so that no request
 * reads more than twice as many hashes as it asks blocks.
 */
async function mainBelowWindow<T extends { hash: Uint8Array; height: number }>(chain: Chain, old: readonly T[]): Promise<T[]> {
  if (old.length === 0) return [];
  const from = Math.min(...old.map((b) => b.height));
  const span = Math.max(...old.map((b) => b.height)) - from + 1;
  if (span > 2 * old.length) {
    const main = await Promise.all(old.map((b) => chain.byHeight.isMain(b.hash, b.height)));
    return old.filter((_, k) => main[k]);
  }
  const mainHashes = await chain.byHeight.hashes(from, span);
  return old.filter((b) => {
    const main = mainHashes[b.height - from];
    return main !== undefined && bytesEqual(main, b.hash);
  });
}
