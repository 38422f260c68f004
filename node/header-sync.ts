import { bytesEqual } from '../ledger/bytes.ts';
import { HEADER_BYTES, type BlockHeader } from '../ledger/block.ts';
import type { Chain } from '../consensus/chain.ts';
import { ConsensusError } from '../consensus/errors.ts';
import { checkCheckpoint, checkpointText, type Checkpoint } from '../consensus/header-rules.ts';
import type { HeaderChainCheck } from '../consensus/headers.ts';
import type { NetworkNames } from './protocols.ts';
import { TransportError, type Transport } from './transport.ts';
import { MAX_HEADERS_PER_RESPONSE, decodeGetHeaderRange, decodeHeaders, encodeGetHeaderRange, encodeHeaderBytes, type Status } from './wire.ts';

const HEADERS_TIMEOUT_MS = 10_000;
/**
 * Header ranges asked of the peer at once. One at a time leaves both ends idle for a round trip
 * per 2,000 headers; a few keep the checker busy while the next ranges travel.
 */
const RANGES_IN_FLIGHT = 8;
/** Below the height both chains share, how far back the first range starts: most forks are shallow. */
const FIRST_LOOK_BACK = 16;
/** Failed requests that say nothing of the peer's chain: what it answered before them stands. */
const NO_ANSWER: ReadonlySet<string> = new Set(['TRANSPORT_TIMEOUT', 'TRANSPORT_CLOSED', 'TRANSPORT_BUSY']);
/** Lying about the chain, or sending what does not match what was asked for, is a ban. */
export const LIE = 100;

/** Something a peer provably did wrong in the sync protocol. */
export class PeerFault extends Error {
  readonly score: number;
  constructor(message: string, score: number) {
    super(message);
    this.score = score;
  }
}

/**
 * A peer whose headers end below the checkpoint its status claimed to pass. The reason names the
 * checkpoint, which a ban keeps: a later start holding another lifts the ban (node/checkpoint.ts).
 */
export function shortOfCheckpoint(tipHeight: number, checkpoint: Checkpoint, score: number): PeerFault {
  return new PeerFault(`its headers end at ${tipHeight}, below the checkpoint ${checkpointText(checkpoint)} its status claimed to pass`, score);
}

/**
 * The answer to getHeaderRange, for every peer that asks (a syncing full node, a light client):
 * main-chain headers by height from the window, or below it from the store's records in one range
 * scan, as stored (nothing decoded or hashed), so a height costs the same at any depth.
 *
 * Never read mid-way through a reorganisation (Chain.readSettled): the main chain then ends at
 * the fork point or part-way up the new branch, below the work our status claimed a moment
 * before, and an answer cut short there is what a liar sends (the asker, full node or light
 * client, bans for it).
 */
export async function answerHeaderRange(chain: Chain, request: Uint8Array): Promise<Uint8Array> {
  const { from, count } = decodeGetHeaderRange(request);
  return encodeHeaderBytes(await chain.readSettled(() => chain.byHeight.headerBytes(from, count)));
}

/** A peer's header chain beyond the block both chains share, checked and written to the scratch list. */
export interface HeaderChain {
  readonly fork: { readonly height: number };
  readonly check: HeaderChainCheck;
  /**
   * False when the peer's chain moved while we fetched it (a reorganisation there), or went on
   * past a header ahead of our clock: what was checked still holds, but falling short of the work
   * it claimed proves nothing.
   */
  readonly complete: boolean;
  /** The first of its headers ahead of our clock, if one ended it. */
  readonly aheadOfClock?: BlockHeader;
  /**
   * A request for a range that failed (a timeout, a connection closed, busy for too long), if one
   * ended it: no fault, and no sign of its chain either; what was checked before it stands.
   */
  readonly interrupted?: TransportError;
}

/**
 * The peer's chain shares no block with ours at or above our fork floor: more work than ours,
 * perhaps, but a chain this node will not follow (the reorg depth, docs/PROTOCOL.md). Not its
 * fault: one of the two was cut off longer than the depth, and it may be this one.
 */
export interface ChainApart {
  readonly apartBelow: number;
  /**
   * Its chain passes through the checkpoint we hold, which ours is below: ours, forking from it
   * deeper than we reorganise, can never reach the checkpoint (this node took another chain first).
   */
  readonly throughCheckpoint?: boolean;
}

/**
 * The headers a peer's chain is compared with and checked after: our main chain (the default),
 * or a snapshot sync's staged headers (node/staged-headers.ts), which a join round goes on from.
 */
export interface OurHeaders {
  /** The lowest height a fork point may have. */
  readonly floor: number;
  /** The height of the last of them. */
  readonly top: number;
  /** Their hashes from height `from`, at most `count`, as far as they go. */
  hashes(from: number, count: number): Promise<readonly Uint8Array[]>;
  /** A check of the headers after ours at `height`, whose hash must be `hash`: undefined when it is one of ours no more. */
  checkFrom(height: number, hash: Uint8Array, now: number): Promise<HeaderChainCheck | undefined>;
}

/** Our main chain as OurHeaders: its floor and tip as they are when read. */
export function mainChainHeaders(chain: Chain): OurHeaders {
  return {
    get floor() {
      return chain.forkFloor;
    },
    get top() {
      return chain.tip.height;
    },
    hashes: (from, count) => chain.byHeight.hashes(from, count),
    checkFrom: (height, hash, now) => chain.headerCheckFrom(height, now, hash),
  };
}

export interface HeaderSyncOptions {
  /** A request to a peer (the transport's, with whatever waiting the caller's budgets need). */
  readonly request: Transport['request'];
  readonly names: NetworkNames;
  readonly chain: Chain;
  readonly clock: () => number;
  readonly onProgress: (height: number) => void;
  /** Each batch once checked, with the chain's total work before it (a snapshot sync keeps the headers). */
  readonly onChecked?: (headers: readonly BlockHeader[], workBefore: bigint) => Promise<void>;
  /** What the peer's chain is compared with and checked after: our main chain unless given. */
  readonly ours?: OurHeaders;
}

/**
 * Fetches `peer`'s header chain by height ranges, several in flight: finds the last block its
 * chain shares with ours within our reorg depth, then checks every header after it in order
 * (HeaderChainCheck) and stores their hashes by height in the store's scratch list as it goes,
 * so a chain of millions of headers never sits in memory. ChainApart when the chains share
 * nothing within our reorg depth; undefined when the peer has nothing beyond the shared block, or
 * its chain moved while we looked.
 */
export async function fetchHeaderChain(o: HeaderSyncOptions, peer: string, claimed: Status): Promise<HeaderChain | ChainApart | undefined> {
  const { chain } = o;
  const range = async (start: number, count: number): Promise<BlockHeader[]> => {
    const bytes = await o.request(peer, o.names.headerRange, encodeGetHeaderRange(start, count), {
      timeoutMs: HEADERS_TIMEOUT_MS,
      maxBytes: 16 + count * HEADER_BYTES,
    });
    const headers = decodeHeaders(bytes);
    if (headers.length > count) throw new PeerFault(`${headers.length} headers for a range of ${count}`, LIE);
    headers.forEach((h, i) => {
      if (h.height !== start + i) throw new PeerFault(`a header of height ${h.height} at ${start + i} of a range`, LIE);
    });
    return headers;
  };

  const ours = o.ours ?? mainChainHeaders(chain);
  const found = await findFork(ours, claimed, range);
  if (found && 'apartBelow' in found) {
    // A chain we will not follow; one header tells whether it holds another block at our
    // checkpoint's height, which a header check would have refused (and banned) had it been near.
    const checkpoint = chain.checkpoint;
    if (checkpoint && claimed.height >= checkpoint.height) {
      const [there] = await range(checkpoint.height, 1);
      if (there) checkCheckpoint(checkpoint, there);
      if (there && chain.tip.height < checkpoint.height) return { ...found, throughCheckpoint: true };
    }
    return found;
  }
  if (!found) return found;
  const { forkHeight, forkHash, headers: first, more } = found;
  const check = await ours.checkFrom(forkHeight, forkHash, o.clock());
  if (!check) return undefined; // the tip moved meanwhile and the fork is now too deep
  const fork = { height: forkHeight };
  let aheadOfClock: BlockHeader | undefined;
  /** Checks and keeps `headers`; false if one is ahead of our clock, when those before it are kept and the rest left for later. */
  const accept = async (headers: readonly BlockHeader[]): Promise<boolean> => {
    const from = check.tipHeight + 1;
    const workBefore = check.totalWork;
    try {
      check.extend(headers, o.clock()); // throws ConsensusError with its ban score
    } catch (err) {
      // No fault of the peer's, and the headers before it hold. Throwing them away too left a node
      // whose clock is behind by more than the drift allowed with nothing of a chain whose newest
      // blocks are always ahead of it: stuck for good, however old the rest of the chain was.
      if (!(err instanceof ConsensusError && err.code === 'HEADER_TIME_TOO_NEW')) throw err;
      aheadOfClock = headers[check.tipHeight + 1 - from];
    }
    const checked = headers.slice(0, check.tipHeight + 1 - from);
    await chain.db.history.putPending(from, checked.map((h) => h.hash));
    await o.onChecked?.(checked, workBefore);
    o.onProgress(check.tipHeight);
    if (check.tipHeight > claimed.height + MAX_HEADERS_PER_RESPONSE) throw new PeerFault('more headers than its status claimed', LIE);
    return !aheadOfClock;
  };
  if (!(await accept(first))) return { fork, check, complete: false, aheadOfClock };
  if (!more) return { fork, check, complete: true };

  const inFlight: Promise<BlockHeader[] | Error>[] = [];
  let ask = check.tipHeight + 1;
  for (;;) {
    while (inFlight.length < RANGES_IN_FLIGHT && ask <= claimed.height) {
      inFlight.push(range(ask, MAX_HEADERS_PER_RESPONSE).catch((err: Error) => err));
      ask += MAX_HEADERS_PER_RESPONSE;
    }
    const next = inFlight.shift();
    if (!next) return { fork, check, complete: true };
    const headers = await next;
    // Thrown away, the headers checked so far were fetched again next round, to fail as far along:
    // from a peer that loses one answer in a few, a chain longer than that was never taken.
    if (headers instanceof TransportError && NO_ANSWER.has(headers.code) && check.tipHeight > fork.height) return { fork, check, complete: false, interrupted: headers };
    if (headers instanceof Error) throw headers;
    // Ranges are asked only up to the height it claimed: none there means its chain moved (to a
    // shorter one, heavier), not that this is all of it.
    if (headers.length === 0) return { fork, check, complete: false };
    if (!bytesEqual(headers[0]!.prevHash, check.tipHash)) return { fork, check, complete: false };
    if (!(await accept(headers))) return { fork, check, complete: false, aheadOfClock };
    if (headers.length < MAX_HEADERS_PER_RESPONSE) return { fork, check, complete: true };
  }
}

/**
 * The last of our headers (our main chain's, or staged ones) that the peer's chain holds too, no
 * deeper than their floor, and the peer's headers after it from the same range. Compares the
 * peer's headers by height with ours (from the window, or the store below it), a few below the
 * lower of the two tips first, then from the floor (or, a long way down, from the last height a
 * bisection found shared).
 */
async function findFork(
  ours: OurHeaders,
  claimed: Status,
  range: (start: number, count: number) => Promise<BlockHeader[]>,
): Promise<{ forkHeight: number; forkHash: Uint8Array; headers: BlockHeader[]; more: boolean } | ChainApart | undefined> {
  const floor = ours.floor;
  const top = Math.min(ours.top, claimed.height);
  // Its whole chain is below anything we could reorganise to, and (the caller asks only peers
  // ahead) heavier: it forks below the floor.
  if (top < floor) return { apartBelow: floor };
  let from = Math.max(floor, top - FIRST_LOOK_BACK);
  let fromFloor = from === floor;
  for (;;) {
    const headers = await range(from + 1, MAX_HEADERS_PER_RESPONSE);
    const known = await ours.hashes(from, headers.length + 1);
    if (headers.length === 0 || known.length === 0) return undefined;
    if (!bytesEqual(headers[0]!.prevHash, known[0]!)) {
      // Back to the floor once. A range that does not link after that (its chain moved, or it
      // answers ours and then not) ends the search: going back again would let a peer keep us
      // looking for ever.
      // A first range from a floor above genesis that does not link is a fork below the floor
      // (or a chain that moved as we looked, which the next round tells apart).
      if (fromFloor) return from === floor && floor > 0 ? { apartBelow: floor } : undefined;
      const shared = await lastShared(ours, floor, from, range);
      if (shared === undefined) return undefined;
      from = shared;
      fromFloor = true;
      continue;
    }
    let i = 0;
    while (i < headers.length && i + 1 < known.length && bytesEqual(known[i + 1]!, headers[i]!.hash)) i++;
    const full = headers.length === MAX_HEADERS_PER_RESPONSE;
    if (i < headers.length || !full) return { forkHeight: from + i, forkHash: known[i]!, headers: headers.slice(i), more: full };
    from += headers.length; // every one of them is ours too
  }
}

/**
 * Where to walk up from, range after range, to the fork below `differs` (a height whose block the
 * peer's chain does not share): `floor`, unless that walk would be long. Above our main chain's
 * floor it is at most the reorg depth, but a snapshot sync's staged headers reach down to genesis,
 * and a peer forking far below their top would have us walk up millions of headers one range at a
 * time (none in flight together, where a fetch from the fork has eight). Single headers halve the
 * gap instead, to within one range: the last height found shared is no promise (a peer may answer
 * one of ours), but the walk from it must link, or the search ends. Undefined: its chain moved.
 */
async function lastShared(ours: OurHeaders, floor: number, differs: number, range: (start: number, count: number) => Promise<BlockHeader[]>): Promise<number | undefined> {
  let shared = floor;
  if (differs - floor <= RANGES_IN_FLIGHT * MAX_HEADERS_PER_RESPONSE) return shared;
  while (differs - shared > MAX_HEADERS_PER_RESPONSE) {
    const mid = shared + Math.floor((differs - shared) / 2);
    const [theirs] = await range(mid, 1);
    const [mine] = await ours.hashes(mid, 1);
    if (!theirs || !mine) return undefined;
    if (bytesEqual(theirs.hash, mine)) shared = mid;
    else differs = mid;
  }
  return shared;
}
