import { bytesEqual, toHex } from '../ledger/bytes.ts';
import { CairnError, ProofError } from '../ledger/errors.ts';
import { decodeBlock, type BlockHeader } from '../ledger/block.ts';
import { MAX_CHUNK_ACCOUNTS, MAX_CHUNK_DEPTH, childPositions, parentPosition, positionDepth, positionKey, positionsAt, verifyChunk } from '../ledger/smt-range.ts';
import { positionId } from '../ledger/smt.ts';
import type { StagedHeader } from '../ledger/snapshot-join.ts';
import type { Chain } from '../consensus/chain.ts';
import { HAVE_DATA, decodeIndexRecord, encodeIndexRecord } from '../consensus/block-index.ts';
import { blockWork } from '../consensus/pow.ts';
import { checkBlockSanity } from '../consensus/sanity.ts';
import { LIE, PeerFault, fetchHeaderChain, shortOfCheckpoint } from './header-sync.ts';
import type { PeerManager } from './peers.ts';
import type { NetworkNames } from './protocols.ts';
import { TransportError, type Transport } from './transport.ts';
import { pivotHeight } from './snapshots.ts';
import { INSTALL_STEPS, JoinProgress } from './snapshot-progress.ts';
import type { Env } from './env.ts';
import { stagedHeaders } from './staged-headers.ts';
import { decodeSnapshotChunk, encodeGetSnapshotChunk, SNAPSHOT_CHUNK_MAX_BYTES } from './snapshot-wire.ts';
import { encodeGetBlocks, type Status } from './wire.ts';

/** The depth of the first chunks asked for (16 of them); a chunk too big to send comes back as its halves. */
const FIRST_CHUNK_DEPTH = 4;
/** Chunks asked of one peer at once (its budget allows eight). */
const CHUNKS_PER_PEER = 4;
const CHUNK_TIMEOUT_MS = 20_000;
/**
 * Positions in line at most, in one round: an honest tree's line is at most its deepest level's
 * chunks, about accounts / 2,048 (here 134 million accounts). A provider splitting every
 * position it is asked, with nobody else to settle its claims, would grow the line for ever and
 * hold the round with it: the round ends there, having verified nothing of that part.
 */
export const MAX_POSITIONS_IN_LINE = 1 << 16;
const BLOCK_TIMEOUT_MS = 20_000;

export interface SnapshotJoinOptions {
  /** A request to a peer, busy answers waited out (the Sync's). */
  readonly request: Transport['request'];
  readonly requestMany: Transport['requestMany'];
  readonly names: NetworkNames;
  readonly chain: Chain;
  readonly peers: PeerManager;
  readonly clock: () => number;
  /** Times the join's progress lines in the log (JoinProgress). */
  readonly env: Pick<Env, 'monotonic'>;
  /** What earlier rounds said (the Sync's, across them); a new one, unless given. */
  readonly progress?: JoinProgress;
  readonly interval: number;
  /** The peers whose status is known now, the most work first: providers are taken from it when the chunks are asked. */
  readonly candidates: () => readonly { peer: string; status: Status }[];
  readonly onHeaders: (height: number) => void;
  /** The most accounts a server puts in a chunk: MAX_CHUNK_ACCOUNTS (tests of crowded positions use fewer, as their servers do). */
  readonly chunkAccounts?: number;
  readonly log: (level: 'info' | 'warn' | 'debug', message: string, fields?: Record<string, unknown>) => void;
}

/** How a join attempt ended: the state installed, not possible (sync from genesis instead), or to try again later. */
export type JoinOutcome = 'joined' | 'not-possible' | 'later';

/**
 * Join rounds in a row that verified no chunk, and for at least how long, after which the node
 * syncs from genesis instead. Rounds come with statuses, seconds apart: four alone would give up
 * within a minute while the serving nodes remake their copies (an upgrade makes them all again,
 * minutes on a large state) or are busy, and a sync from genesis of a long chain is hours.
 */
export const JOIN_ROUNDS_WITHOUT_PROGRESS = 4;
export const JOIN_GIVE_UP_AFTER_MS = 10 * 60_000;

/**
 * Whose headers a join round takes, across rounds: the peer claiming the most work, but not one
 * whose headers did not show its claim in an earlier round (none, fewer, busy, timed out: its chain
 * may have moved, so no penalty, but a peer that claims more than it has must not hold every round)
 * while another is left. After JOIN_ROUNDS_WITHOUT_PROGRESS rounds that verified no chunk, over
 * JOIN_GIVE_UP_AFTER_MS at least, snapshot sync gives way to the ordinary sync from genesis, which
 * any honest peer's chain serves.
 */
export class JoinTurns {
  private readonly passedOver = new Set<string>();
  private readonly now: () => number;
  private roundsWithoutProgress = 0;
  /** When the rounds without progress began (monotonic ms). */
  private noProgressSince: number | undefined;

  constructor(now: () => number) {
    this.now = now;
  }

  /** Whether to try a join this round at all. */
  get givenUp(): boolean {
    return this.roundsWithoutProgress >= JOIN_ROUNDS_WITHOUT_PROGRESS && this.now() - this.noProgressSince! >= JOIN_GIVE_UP_AFTER_MS;
  }

  /** The peer whose headers this round takes, from those ahead (the most work first). */
  pick<T extends { peer: string }>(ahead: readonly T[]): T | undefined {
    const fresh = ahead.filter((c) => !this.passedOver.has(c.peer));
    if (fresh.length > 0) return fresh[0];
    this.passedOver.clear(); // every one had its turn: round again
    return ahead[0];
  }

  /** A round's end: `unshown` when `peer`'s headers did not show its claim; `chunks` verified in it. */
  ended(peer: string, unshown: boolean, chunks: number): void {
    if (unshown) this.passedOver.add(peer);
    this.roundsWithoutProgress = chunks > 0 ? 0 : this.roundsWithoutProgress + 1;
    this.noProgressSince = chunks > 0 ? undefined : (this.noProgressSince ?? this.now());
  }
}

/**
 * Snapshot sync (docs/PROTOCOL.md, "Snapshot sync"): a node at genesis takes the state of a
 * snapshot block well below the best chain's tip instead of executing every block before it. It
 * checks the best peer's headers as any sync does (node/header-sync.ts), keeping them up to the
 * pivot — the highest snapshot height at least the reorg depth below the checked tip — then
 * fetches the state at the pivot in chunks from every peer that has it, several in flight, each
 * checked by its range proof against the pivot header's state root (a chunk that fails costs its
 * sender a ban, and is asked of another), each kept as it verifies (ledger/snapshot-join.ts), so a
 * kill loses nothing already checked. Then it installs the state under the import lock and the
 * chain adopts the pivot as its tip (history below it absent, as on a pruned node); the ordinary
 * sync executes the blocks from there.
 */
export class SnapshotJoin {
  private readonly o: SnapshotJoinOptions;
  /** Chunks verified in this attempt. */
  chunksVerified = 0;
  /** Its phase and how far it got (status, the log). */
  readonly progress: JoinProgress;

  constructor(o: SnapshotJoinOptions) {
    this.o = o;
    this.progress = o.progress ?? new JoinProgress(o.env, o.log);
  }

  /** Tries to join, with the headers of `best` (JoinTurns.pick), the state from every peer that has it. */
  async run(best: { peer: string; status: Status }): Promise<JoinOutcome> {
    const { chain, interval } = this.o;
    if (chain.tip.height !== 0) return 'not-possible';
    const maxPivot = pivotHeight(best.status.height, interval, chain.reorgDepth);
    if (maxPivot === undefined) return (await chain.db.join.state()) ? 'later' : 'not-possible';
    const target = best.status.height;
    this.progress.begin({ phase: 'headers', pivot: 0, done: 0, total: target }, 'snapshot sync: checking the headers of the peer with the most work', { peer: best.peer, target });

    // 1. Headers, checked as any sync checks them; those up to the highest pivot possible kept.
    // From the last staged header its chain holds too: what an earlier round checked stays.
    let work = 0n;
    let replacing = true;
    const staged = async (headers: readonly BlockHeader[], workBefore: bigint) => {
      work = workBefore;
      const keep: StagedHeader[] = [];
      for (const header of headers) {
        work += blockWork(header.target);
        if (header.height <= maxPivot) keep.push({ height: header.height, hash: header.hash, record: encodeIndexRecord({ header, totalWork: work, status: 0, seq: 0 }) });
      }
      if (keep.length === 0) return;
      // Staged headers above the fork are another chain's: this one's replace them.
      if (replacing) await chain.db.join.dropHeadersFrom(keep[0]!.height);
      replacing = false;
      await chain.db.join.stageHeaders(keep);
    };
    const headersChecked = (height: number) => {
      this.o.onHeaders(height);
      this.progress.advance(height, target);
    };
    let found;
    try {
      const ours = await stagedHeaders(chain);
      found = await fetchHeaderChain({ request: this.o.request, names: this.o.names, chain, clock: this.o.clock, onProgress: headersChecked, onChecked: staged, ours }, best.peer, best.status);
    } finally {
      await chain.db.history.clearPending();
    }
    // At genesis, the floor: never apart. None at all: its chain moved, or it claims what it has not.
    if (!found || 'apartBelow' in found) throw new PeerFault('its headers showed none of the work it claimed: no pivot from them', 0);
    const { check, complete } = found;
    if (check.totalWork < best.status.totalWork) {
      if (complete) throw new PeerFault('its headers do not add up to the work it claimed', LIE);
      // Its chain moved under us, or it stopped showing it: a sync keeps what it checked, but a
      // pivot may come only from a chain that showed the most work (the state installed at it
      // stays: no fork below it is followed). Unpunished; the next round asks the next best peer.
      throw new PeerFault('its headers stopped short of the work it claimed: no pivot from them', 0);
    }
    // A pivot only on a chain through our checkpoint (the header check refused another block at
    // its height): the state installed there could never be left. Its status said it reached it.
    const checkpoint = chain.checkpoint;
    if (checkpoint && check.tipHeight < checkpoint.height) throw shortOfCheckpoint(check.tipHeight, checkpoint, complete ? LIE : 0);
    const pivot = pivotHeight(Math.min(check.tipHeight, maxPivot + chain.reorgDepth), interval, chain.reorgDepth);
    if (pivot === undefined) return 'later';
    const staged0 = await chain.db.join.stagedRecord(pivot);
    if (!staged0) return 'later';
    const pivotHeader = decodeIndexRecord(staged0.record).header;
    await chain.db.join.begin(pivot, pivotHeader.hash);
    const verified = await chain.db.join.chunksDone();
    const chunks = { phase: 'chunks', pivot, done: verified.size, total: verified.size + plan(verified).length } as const;
    this.progress.begin(chunks, 'snapshot sync', { pivot, hash: toHex(pivotHeader.hash), tip: check.tipHeight, chunksDone: verified.size });

    // 2. The pivot's body (the tip must be a stored block), then its state, chunk by chunk.
    // Every peer known by now whose chain reaches the pivot (more statuses came in during the headers).
    const providers = this.o.candidates().filter((c) => c.status.height >= pivot && !this.o.peers.isBanned(c.peer)).map((c) => c.peer);
    if (!(await chain.db.hasBlock(pivotHeader.hash)) && !(await this.fetchPivotBlock(pivotHeader, providers))) return 'later';
    if (!(await this.fetchState(pivot, pivotHeader, providers))) {
      this.progress.warnOnce(`snapshot sync: no peer left that serves the state at ${pivot}; asking again at the next status`, { providers: providers.length });
      return 'later';
    }

    // 3. Install, and the chain takes the pivot as its tip.
    const pivotRecord = encodeIndexRecord({ ...decodeIndexRecord(staged0.record), status: HAVE_DATA });
    this.progress.begin({ phase: 'installing', pivot, done: 0, total: INSTALL_STEPS.length }, 'snapshot sync: installing the state', { pivot });
    await chain.adoptSnapshot(() =>
      chain.db.join.install(pivotRecord, (step) => {
        this.progress.advance(INSTALL_STEPS.indexOf(step), INSTALL_STEPS.length);
        this.o.log('debug', 'snapshot installing', { step });
      }),
    );
    this.progress.end();
    this.o.log('info', 'snapshot installed', { height: chain.tip.height, hash: chain.tip.hashHex });
    return 'joined';
  }

  private async fetchPivotBlock(header: BlockHeader, providers: readonly string[]): Promise<boolean> {
    for (const peer of providers) {
      try {
        const [bytes] = await this.o.requestMany(peer, this.o.names.blocks, encodeGetBlocks([header.hash]), 1, { timeoutMs: BLOCK_TIMEOUT_MS, maxBytes: this.o.chain.params.maxBlockBytes });
        if (!bytes) continue; // pruned or lacking: another may have it
        const block = decodeBlock(bytes);
        if (!bytesEqual(block.header.hash, header.hash)) throw new PeerFault(`sent block ${toHex(block.header.hash)} for ${toHex(header.hash)}`, LIE);
        try {
          checkBlockSanity(block, this.o.chain.params);
        } catch (err) {
          throw new PeerFault(`sent a body that does not match the header of ${toHex(header.hash)}: ${(err as Error).message}`, LIE);
        }
        await this.o.chain.db.putBlock(block);
        return true;
      } catch (err) {
        this.blame(peer, err);
      }
    }
    return false;
  }

  /**
   * The state at the pivot: every chunk not yet verified, asked of the providers a few at a time
   * each; a provider that lacks the snapshot, fails or lies drops out (a liar banned) and its chunk
   * goes back in line. False when chunks remain and nobody is left to ask.
   *
   * A `split` is a claim of more than MAX_CHUNK_ACCOUNTS accounts under the position, which its
   * halves settle once they verified: a peer whose split they show to hold fewer lied (it had the
   * asker fetch up to 2^depth chunks of honest servers for one), and is banned, once a join.
   */
  private async fetchState(pivot: number, header: BlockHeader, providers: readonly string[]): Promise<boolean> {
    const { chain } = this.o;
    const verifiedBefore = await chain.db.join.chunksDone();
    const todo = new Line(plan(verifiedBefore));
    const active = new Set(providers);
    let verified = 0;
    /** The positions split in this join, by whom, the accounts their verified parts held, and the parts still out. */
    const splits = new Map<string, { peer: string; accounts: number; open: number }>();
    const charged = new Set<string>();
    const settle = (position: string, accounts: number) => {
      for (let id = position; positionDepth(id) > 0; ) {
        const parent = parentPosition(id);
        const split = splits.get(parent);
        if (!split) return;
        split.accounts += accounts;
        if (--split.open > 0) return;
        splits.delete(parent);
        if (split.accounts <= (this.o.chunkAccounts ?? MAX_CHUNK_ACCOUNTS) && !charged.has(split.peer)) {
          charged.add(split.peer);
          active.delete(split.peer);
          this.blame(split.peer, new PeerFault(`answered split for a position that holds ${split.accounts} accounts`, LIE));
        }
        id = parent;
        accounts = split.accounts;
      }
    };
    let waiters: (() => void)[] = [];
    let inFlight = 0;
    const wake = () => {
      const w = waiters;
      waiters = [];
      for (const f of w) f();
    };
    const worker = async (peer: string) => {
      while (active.has(peer)) {
        const position = todo.shift();
        if (position === undefined) {
          if (inFlight === 0) return;
          await new Promise<void>((resolve) => waiters.push(resolve)); // a chunk in flight may come back split or refused
          continue;
        }
        inFlight++;
        try {
          const bytes = await this.o.request(peer, this.o.names.snapshot, encodeGetSnapshotChunk({ height: pivot, hash: header.hash, position }), { timeoutMs: CHUNK_TIMEOUT_MS, maxBytes: SNAPSHOT_CHUNK_MAX_BYTES });
          const answer = decodeSnapshotChunk(bytes);
          if (answer.kind === 'none') {
            todo.unshift(position);
            active.delete(peer);
          } else if (answer.kind === 'split') {
            if (positionDepth(position) >= MAX_CHUNK_DEPTH) throw new PeerFault(`answered split at depth ${MAX_CHUNK_DEPTH}, where a position holds at most two accounts`, LIE);
            if (todo.length + 2 > MAX_POSITIONS_IN_LINE) {
              todo.unshift(position);
              active.clear();
              this.o.log('warn', `snapshot sync: more than ${MAX_POSITIONS_IN_LINE} positions in line, split by ${peer}: ending this round`);
              continue;
            }
            splits.set(position, { peer, accounts: 0, open: 2 });
            todo.push(...childPositions(position));
          } else {
            const leaves = verifyChunk(header.stateRoot, position, answer.entries, answer.proof);
            await chain.db.join.putChunk(position, leaves);
            verified++;
            this.chunksVerified++;
            settle(position, leaves.length);
            this.o.log('debug', 'snapshot chunk', { peer, depth: positionDepth(position), accounts: leaves.length });
          }
        } catch (err) {
          todo.unshift(position);
          active.delete(peer);
          this.blame(peer, err);
        } finally {
          inFlight--;
          wake();
          this.progress.advance(verifiedBefore.size + verified, verifiedBefore.size + verified + todo.length + inFlight);
        }
      }
    };
    await Promise.all([...active].flatMap((peer) => Array.from({ length: CHUNKS_PER_PEER }, () => worker(peer))));
    this.o.log('debug', 'snapshot chunks', { verified, left: todo.length });
    return todo.length === 0;
  }

  /** Only what a peer provably did: a chunk whose proof fails, garbage, a wrong body. Never a timeout. */
  private blame(peer: string, err: unknown): void {
    if (err instanceof TransportError) return;
    if (err instanceof ProofError) this.o.peers.penalize(peer, err.banScore, `snapshot sync: a chunk that fails its range proof: ${err.message}`);
    else if (err instanceof PeerFault) this.o.peers.penalize(peer, err.score, `snapshot sync: ${err.message}`);
    else if (err instanceof CairnError) this.o.peers.penalize(peer, err.banScore, `snapshot sync: ${err.message}`);
    else throw err;
  }
}

/** The positions in line: taken from the front, a refused one put back there, halves at the back; a shift of a long array per position taken made a long line quadratic. */
class Line {
  private items: string[];
  private head = 0;

  constructor(items: string[]) {
    this.items = items;
  }

  get length(): number {
    return this.items.length - this.head;
  }

  push(...ids: string[]): void {
    this.items.push(...ids);
  }

  unshift(id: string): void {
    if (this.head > 0) this.items[--this.head] = id;
    else this.items.unshift(id);
  }

  shift(): string | undefined {
    if (this.head >= this.items.length) return undefined;
    const id = this.items[this.head++]!;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return id;
  }
}

/** The chunks still to fetch: the first positions, less those verified, split where a half was verified. */
export function plan(done: ReadonlySet<string>): string[] {
  const partial = new Set<string>();
  for (const id of done) {
    for (let d = positionDepth(id) - 1; d >= FIRST_CHUNK_DEPTH; d--) partial.add(ancestor(id, d));
  }
  const out: string[] = [];
  const visit = (id: string) => {
    if (done.has(id)) return;
    if (partial.has(id)) for (const child of childPositions(id)) visit(child);
    else out.push(id);
  };
  for (const id of positionsAt(FIRST_CHUNK_DEPTH)) visit(id);
  return out;
}

function ancestor(id: string, depth: number): string {
  return positionId(positionKey(id), depth);
}
