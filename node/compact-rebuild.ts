import type { BoundedSet } from '../ledger/bounded.ts';
import { toHex } from '../ledger/bytes.ts';
import { CairnError, DecodeError } from '../ledger/errors.ts';
import type { ChainParams } from '../ledger/genesis.ts';
import type { Mempool } from '../ledger/mempool.ts';
import { TX_BYTES, type Transaction } from '../ledger/transaction.ts';
import type { SaneBlock } from '../consensus/sanity.ts';
import { assemble, fetchBlockTxs, matchMempool, type CompactBlock } from './compact.ts';
import type { Env } from './env.ts';
import type { PeerManager } from './peers.ts';
import type { PeerRecords } from './peer-records.ts';
import type { NetworkNames } from './protocols.ts';
import type { Transport } from './transport.ts';

/**
 * How many other peers are asked at once for what a compact block's forwarder did not give: a few,
 * since by then every honest peer has had the block for as long as the forwarder kept us waiting.
 */
export const OTHER_PEERS_ASKED = 4;
/**
 * How long a forwarder has to answer for the transactions before other peers are asked as well
 * (a hedged request): HEDGE_ROUND_TRIPS of its last status round trip, within HEDGE_MIN_MS and
 * HEDGE_MAX_MS, plus its answer's bytes at HEDGE_BYTES_PER_MS. An honest forwarder answers in a
 * round trip from memory, but it relays a block before importing it and answers while that import
 * runs (45–67 ms a hop on two cores in BENCHMARKS.md's propagation runs, more for a full block or
 * a node also mining), hence a floor ten times that: asked too early, honest peers would pay a
 * round of requests for every block whose forwarder is merely busy. The ceiling, a fifth of the
 * request's 5 s deadline, is what a stalling forwarder costs each hop behind it (its round trip
 * is its own to inflate); unmeasured (no status answered yet), the ceiling.
 */
export const HEDGE_ROUND_TRIPS = 4;
export const HEDGE_MIN_MS = 500;
export const HEDGE_MAX_MS = 1000;
/** 1 MB/s: a forwarder still sending thousands of transactions is not stalling, and others would send them all again. */
export const HEDGE_BYTES_PER_MS = 1000;
/** Headers whose transactions no other peer held, remembered so (see fromOthers), oldest first. */
export const MAX_NONE_HELD = 1024;
/** A forwarder's whole answer matched the short ids and not the Merkle root: no honest node sends that. */
const UNMADE_COMPACT_SCORE = 100;

export interface CompactRebuildOptions {
  readonly transport: Transport;
  /** The hedge's timer (hedgeDelayMs). */
  readonly env: Pick<Env, 'setTimeout' | 'clearTimeout'>;
  readonly names: NetworkNames;
  readonly mempool: Pick<Mempool, 'byShortId'>;
  readonly params: ChainParams;
  readonly peers: PeerManager;
  /** Which peers brought us blocks first lately (asked first after the forwarder), and the forwarder's round trip (the hedge's delay). */
  readonly records?: PeerRecords;
  /** A peer's answer, or undefined once the node stops (node/stop-gate.ts). */
  readonly untilStop: <T>(answer: Promise<T>) => Promise<T | undefined>;
  readonly stopped: () => boolean;
  /** Headers (hex) whose transactions other peers were asked for and none held (fromOthers). */
  readonly noneHeld: BoundedSet<string>;
  /** Headers (hex) whose transactions other peers were asked for once more after a hedged round found none held (hedgedFetch). */
  readonly askedAgain: BoundedSet<string>;
  readonly stats: { rebuilt: number; fetched: number; fromOthers: number; hedged: number };
}

/**
 * The block a compact block stands for, its transactions from our mempool and, for those we lack,
 * from its forwarder; undefined if they could not be had (sync fetches it whole).
 *
 * Gossipsub drops the copies of the message that other peers forward while the first is judged,
 * so the forwarder is the only peer we know has the block. One that stalls, or answers empty
 * (neither an offence: a slow or restarted honest peer does both), would otherwise hold the
 * block here until the next status poll, and each hop behind it for the request's 5 s deadline:
 * the transactions are also asked of other peers once it has not answered within the hedge's
 * delay (hedgeDelayMs), or as soon as it gives nothing. Their answers are checked against the
 * forwarder's short ids and the header's Merkle root, and cost them nothing when wrong: the
 * short ids were the forwarder's word, not theirs.
 */
export async function rebuildCompact(o: CompactRebuildOptions, forwarder: string, compact: CompactBlock): Promise<SaneBlock | undefined> {
  const { txs, missing } = matchMempool(compact, o.mempool);
  if (missing.length === 0) {
    o.stats.rebuilt++;
  } else {
    o.stats.fetched++;
    const fetched = await hedgedFetch(o, forwarder, compact, missing);
    if (!fetched || o.stopped()) return undefined;
    missing.forEach((index, k) => (txs[index] = fetched.txs[k]));
  }
  const block = assemble(compact, txs as Transaction[], o.params);
  if (block || o.stopped()) return block;
  // A short-id collision (a transaction of our mempool's sharing one with the block's): all of them.
  const all = await hedgedFetch(o, forwarder, compact, compact.shortIds.map((_, i) => i));
  if (!all || o.stopped()) return undefined;
  const whole = assemble(compact, all.txs, o.params);
  // Every transaction from the forwarder, each the one its short id names, and still not the
  // header's: it holds the block it forwarded, so this is a compact block no block makes.
  if (!whole && all.fromForwarder) o.peers.penalize(forwarder, UNMADE_COMPACT_SCORE, 'a compact block whose transactions, from its forwarder, do not make its header');
  return whole;
}

/** Transactions fetched, and whether the forwarder gave them (only its answers are held against it). */
interface Fetched {
  readonly txs: Transaction[];
  readonly fromForwarder: boolean;
}

/** How long the forwarder has to answer for `asked` transactions before others are asked too (see HEDGE_ROUND_TRIPS). */
export function hedgeDelayMs(forwarderRttMs: number | undefined, asked: number): number {
  const wait = forwarderRttMs === undefined ? HEDGE_MAX_MS : Math.min(HEDGE_MAX_MS, Math.max(HEDGE_MIN_MS, HEDGE_ROUND_TRIPS * forwarderRttMs));
  return wait + Math.ceil((asked * TX_BYTES) / HEDGE_BYTES_PER_MS);
}

/**
 * The transactions at `indexes`, from the forwarder if it answers within the hedge's delay (and
 * then nobody else is asked); else from it or other peers, whichever first gives them all, and
 * from others at once if it gives nothing before the delay. Others that had nothing at the hedge
 * may not have had the block yet: if the forwarder then gives nothing too, they are asked once
 * more, having had the block as long as it kept us waiting: one round more a header, however many
 * variants of it come and however close together, and none when their answers showed they hold a
 * block by that hash.
 */
async function hedgedFetch(o: CompactRebuildOptions, forwarder: string, compact: CompactBlock, indexes: readonly number[]): Promise<Fetched | undefined> {
  const own = fromForwarder(o, forwarder, compact, indexes);
  const prompt = await withinHedge(o, own, hedgeDelayMs(o.records?.get(forwarder)?.rttMs, indexes.length));
  if (prompt !== LATE) return prompt ? { txs: prompt, fromForwarder: true } : taken(o, await fromOthers(o, forwarder, compact, indexes));
  o.stats.hedged++;
  const hash = toHex(compact.header.hash);
  const askedBefore = o.noneHeld.has(hash);
  const others = fromOthers(o, forwarder, compact, indexes);
  const first = await firstFound<Fetched>([own.then((txs) => txs && { txs, fromForwarder: true }), others.then((txs) => txs && { txs, fromForwarder: false })]);
  if (first) return first.fromForwarder ? first : taken(o, first.txs);
  // Once a header, and only if the round found that none held it: answers showing a block by that
  // hash under other short ids would be the same again, and variants of one header whose hedges
  // all fired before any round ended would each pay the others a second round.
  if (askedBefore || o.stopped() || !o.noneHeld.has(hash) || o.askedAgain.has(hash)) return undefined;
  o.askedAgain.add(hash);
  return taken(o, await fromOthers(o, forwarder, compact, indexes, { again: true }));
}

const LATE = Symbol('the forwarder has not answered within the hedge');

/** The forwarder's answer, or LATE once `ms` have passed without it. */
function withinHedge<T>(o: CompactRebuildOptions, answer: Promise<T>, ms: number): Promise<T | typeof LATE> {
  let timer: unknown;
  const late = new Promise<typeof LATE>((resolve) => (timer = o.env.setTimeout(() => resolve(LATE), ms)));
  return Promise.race([answer.finally(() => o.env.clearTimeout(timer)), late]);
}

/** Others' transactions, counted as theirs when taken. */
function taken(o: CompactRebuildOptions, txs: Transaction[] | undefined): Fetched | undefined {
  if (!txs) return undefined;
  o.stats.fromOthers++;
  return { txs, fromForwarder: false };
}

/**
 * The forwarder's answer: garbage is its doing (it holds the block), and costs its ban score; a
 * timeout, a busy answer or a cut stream costs nothing.
 */
async function fromForwarder(o: CompactRebuildOptions, forwarder: string, compact: CompactBlock, indexes: readonly number[]): Promise<Transaction[] | undefined> {
  const answer = fetchBlockTxs(o.transport, o.names, forwarder, compact, indexes).catch((err: unknown) => {
    if (err instanceof CairnError && err.banScore > 0) o.peers.penalize(forwarder, err.banScore, `block transactions: ${err.message}`);
    return undefined;
  });
  return o.untilStop(answer);
}

/**
 * The first full answer of up to OTHER_PEERS_ASKED other peers, asked at once (those that brought
 * blocks lately first). A header none of them had (every answer empty, or none) is not asked of
 * them again (unless `again`, by the rebuild whose round found none: hedgedFetch): the same header
 * with other short ids, from identity after identity, would otherwise cost honest peers these
 * requests per message, for a block its miner never released.
 */
async function fromOthers(o: CompactRebuildOptions, forwarder: string, compact: CompactBlock, indexes: readonly number[], { again = false } = {}): Promise<Transaction[] | undefined> {
  const hash = toHex(compact.header.hash);
  if (o.stopped() || (o.noneHeld.has(hash) && !again)) return undefined;
  const lastBlockAt = (peer: string) => o.records?.get(peer)?.lastBlockAt ?? -1;
  const asked = o.transport
    .peers()
    .filter((peer) => peer !== forwarder && !o.peers.isBanned(peer))
    .sort((a, b) => lastBlockAt(b) - lastBlockAt(a))
    .slice(0, OTHER_PEERS_ASKED);
  if (asked.length === 0) return undefined;
  // An answer that is not empty and not the transactions asked: that peer holds a block by that
  // hash, and the short ids were not its own (a variant's).
  let held = false;
  const answers = asked.map((peer) =>
    fetchBlockTxs(o.transport, o.names, peer, compact, indexes).catch((err: unknown) => {
      if (err instanceof DecodeError) held = true;
      return undefined;
    }),
  );
  const txs = await o.untilStop(firstFound(answers));
  if (!txs && !held && !o.stopped()) o.noneHeld.add(hash);
  return txs;
}

/** The first of `answers` to resolve to something; undefined once every one resolved to nothing. */
function firstFound<T>(answers: readonly Promise<T | undefined>[]): Promise<T | undefined> {
  return new Promise((resolve) => {
    let left = answers.length;
    for (const answer of answers) {
      void answer.then((value) => {
        if (value !== undefined) resolve(value);
        else if (--left === 0) resolve(undefined);
      });
    }
  });
}
