/**
 * How a light client fetches a peer's headers into its staging (node/light/headers.ts): by
 * height while the peer's chain extends ours, else by locator from where it leaves ours, every
 * header checked against the one before it. Whether the staged headers become the chain is the
 * client's call (LightSync.syncFrom, node/light/sync.ts: only once they show the work the peer claimed).
 */
import { bytesEqual, toHex } from '../../ledger/bytes.ts';
import { HEADER_BYTES, type BlockHeader } from '../../ledger/block.ts';
import type { ChainParams } from '../../ledger/genesis.ts';
import { ConsensusError } from '../../consensus/errors.ts';
import { HeaderChainCheck } from '../../consensus/headers.ts';
import { checkpointText, contradictsCheckpoint, type Checkpoint } from '../../consensus/header-rules.ts';
import { PeerFault } from '../header-sync.ts';
import type { NetworkNames } from '../protocols.ts';
import type { RequestLimits } from '../transport.ts';
import { MAX_HEADERS_PER_RESPONSE, decodeHeaders, encodeGetHeaderRange, encodeGetHeaders } from '../wire.ts';
import { RECENT_HEADERS, type HeaderView } from './headers.ts';

const HEADERS_TIMEOUT_MS = 10_000;
/** Lying about the chain: a ban. */
export const LIE = 100;
/** Headers of a competing branch held while its work is weighed against ours. */
const MAX_BRANCH = 4 * RECENT_HEADERS;
/** Times a peer's chain may move while its branch is followed (see followBranch). */
const MAX_BRANCH_MOVES = 3;

/** What fetching headers needs of the client: its network, its clock, its requests, its log. */
export interface HeaderFetching {
  readonly params: ChainParams;
  readonly names: NetworkNames;
  readonly clock: () => number;
  readonly request: (peer: string, protocol: string, message: Uint8Array, limits: RequestLimits) => Promise<Uint8Array>;
  /** The peer's chain cannot be followed (why, in words): the client leaves it alone while it stays connected. */
  readonly apart: (peer: string, why: string) => void;
  /** The block the user trusts (node/light/checkpoint.ts): a chain with another at its height is a fault. */
  readonly checkpoint: Checkpoint | undefined;
}

/** Throws if `header` stands where the checkpoint does and is another block: the peer's chain forks below it. */
function holdsCheckpoint(o: HeaderFetching, header: BlockHeader): void {
  const c = o.checkpoint;
  if (contradictsCheckpoint(c, header)) throw new PeerFault(`a chain that forks below the checkpoint ${checkpointText(c!)}`, LIE);
}

/**
 * Throws if `headers`, which go on from a block of ours, leave our chain at or below the
 * checkpoint that ours holds: the peer's status claimed a chain that reaches the checkpoint's
 * height (LightSync.ahead), so it holds another block there, even where these headers stop short
 * of it or fork too far back to follow. (The locator's block may be below the fork: the headers up
 * to it are ours.)
 */
function forksBelowCheckpoint(o: HeaderFetching, staged: HeaderView, headers: readonly BlockHeader[]): void {
  const c = o.checkpoint;
  if (!c || c.height > staged.height) return;
  for (const h of headers) {
    if (h.height > c.height) return;
    const ours = staged.hashAt(h.height);
    if (!ours || !bytesEqual(ours, h.hash)) throw new PeerFault(`a chain that forks below the checkpoint ${checkpointText(c)}`, LIE);
  }
}

/**
 * Headers by height after our tip, staged as they are checked: the usual case, a peer further
 * along our own chain. The total work then shown; undefined if the peer's next header does not
 * follow our tip, or it has none at that height at all: its chain forks from ours, and may have
 * more work at no more height (a branch mined on schedule against ours mined slowly, whose
 * ASERT targets were easier), which only the locator finds. No more is asked once the headers
 * reach `upTo`, a little past the height the peer claimed: what its chain grew since, the next
 * round takes; a stream of valid headers that never adds up to its claim is cut there (and judged
 * by the caller).
 */
export async function extendByRange(o: HeaderFetching, peer: string, staged: HeaderView, upTo: number): Promise<bigint | undefined> {
  let check: HeaderChainCheck | undefined;
  for (;;) {
    const tip = staged.tip;
    const bytes = await o.request(peer, o.names.headerRange, encodeGetHeaderRange(tip.header.height + 1, MAX_HEADERS_PER_RESPONSE), {
      timeoutMs: HEADERS_TIMEOUT_MS,
      maxBytes: 16 + MAX_HEADERS_PER_RESPONSE * HEADER_BYTES,
    });
    const headers = decodeHeaders(bytes);
    if (headers.length === 0) return check?.totalWork;
    if (!bytesEqual(headers[0]!.prevHash, tip.header.hash)) return undefined;
    check ??= new HeaderChainCheck(o.params, staged.startAt(tip.header.height)!, o.clock());
    const works: bigint[] = [];
    for (const h of headers) {
      try {
        check.extend([h], o.clock()); // throws a ConsensusError with its ban score at the first bad header
      } catch (err) {
        // Those before a header ahead of our clock hold: staged, for syncFrom to judge.
        if (err instanceof ConsensusError && err.code === 'HEADER_TIME_TOO_NEW') staged.append(headers.slice(0, works.length), works);
        throw err;
      }
      holdsCheckpoint(o, h);
      works.push(check.totalWork);
    }
    staged.append(headers, works);
    if (headers.length < MAX_HEADERS_PER_RESPONSE || staged.height >= upTo) return check.totalWork;
  }
}

/**
 * Headers after our locator: a branch that forks below our tip is held until its work exceeds
 * ours (or, `tie`, equals it), and only then replaces the staged headers above the fork. The work
 * shown, up to the height `upTo` at most (as extendByRange); undefined if the
 * branch cannot be followed (it forks too far back, or runs too long without more work).
 */
export async function followBranch(o: HeaderFetching, peer: string, staged: HeaderView, upTo: number, tie = false): Promise<bigint | undefined> {
  let check: HeaderChainCheck | undefined;
  let fork = -1;
  let branch: { header: BlockHeader; work: bigint }[] = [];
  let adopted = false;
  let moves = 0;
  for (;;) {
    const { hashes, heights } = staged.locator();
    const locator = branch.length > 0 ? [branch.at(-1)!.header.hash, ...hashes] : hashes;
    const bytes = await o.request(peer, o.names.headers, encodeGetHeaders({ locator, max: MAX_HEADERS_PER_RESPONSE }), {
      timeoutMs: HEADERS_TIMEOUT_MS,
      maxBytes: 16 + MAX_HEADERS_PER_RESPONSE * HEADER_BYTES,
    });
    const headers = decodeHeaders(bytes);
    if (headers.length === 0) break;
    // Before the fork is weighed: one too deep to follow is still a fault when it passes the
    // checkpoint's height with another block (the locator's block may be below the fork: those
    // after it up to the fork are ours, the checkpoint's among them).
    for (const h of headers) holdsCheckpoint(o, h);
    // Not going on from its last answer: the peer's chain moved in between. A new branch, its fork
    // found again; a few times at most (one switching between branches must not hold the sync).
    if (check && !bytesEqual(headers[0]!.prevHash, check.tipHash)) {
      if (++moves > MAX_BRANCH_MOVES) return undefined;
      check = undefined;
      branch = [];
      adopted = false;
    }
    if (!check) {
      const from = heights.get(toHex(headers[0]!.prevHash));
      if (from === undefined) throw new PeerFault('headers that do not start from a block of our chain', LIE);
      forksBelowCheckpoint(o, staged, headers);
      const start = staged.startAt(from);
      if (!start) {
        o.apart(peer, `peer ${peer} has a chain that forks from ours more than ${RECENT_HEADERS} headers back; not following it`);
        return undefined;
      }
      check = new HeaderChainCheck(o.params, start, o.clock());
      fork = from;
    }
    const works: bigint[] = [];
    for (const h of headers) {
      check.extend([h], o.clock());
      works.push(check.totalWork);
    }
    if (adopted || fork === staged.height) {
      staged.append(headers, works);
      adopted = true;
    } else {
      branch.push(...headers.map((header, i) => ({ header, work: works[i]! })));
      if (check.totalWork > staged.tip.totalWork || (tie && check.totalWork === staged.tip.totalWork)) {
        staged.truncate(fork);
        staged.append(branch.map((b) => b.header), branch.map((b) => b.work));
        branch = [];
        adopted = true;
      } else if (branch.length > MAX_BRANCH) {
        o.apart(peer, `peer ${peer}'s branch is ${branch.length} headers long without more work than ours; not following it`);
        return undefined;
      }
    }
    if (headers.length < MAX_HEADERS_PER_RESPONSE || check.tipHeight >= upTo) break;
  }
  return check?.totalWork ?? staged.tip.totalWork;
}
