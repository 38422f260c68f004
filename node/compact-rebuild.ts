import type { BoundedSet } from '../ledger/bounded.ts';
import { toHex } from '../ledger/bytes.ts';
import { CairnError, DecodeError } from '../ledger/errors.ts';
import type { ChainParams } from '../ledger/genesis.ts';
import type { Mempool } from '../ledger/mempool.ts';
import type { Transaction } from '../ledger/transaction.ts';
import type { SaneBlock } from '../consensus/sanity.ts';
import { assemble, fetchBlockTxs, matchMempool, type CompactBlock } from './compact.ts';
import type { PeerManager } from './peers.ts';
import type { PeerRecords } from './peer-records.ts';
import type { NetworkNames } from './protocols.ts';
import type { Transport } from './transport.ts';

/**
 * How many other peers are asked at once for what a compact block's forwarder did not give: a few,
 * since by then every honest peer has had the block for as long as the forwarder kept us waiting.
 */
export const OTHER_PEERS_ASKED = 4;
/** Headers whose transactions no other peer held, remembered so (see fromOthers), oldest first. */
export const MAX_NONE_HELD = 1024;
/** A forwarder's whole answer matched the short ids and not the Merkle root: no honest node sends that. */
const UNMADE_COMPACT_SCORE = 100;

export interface CompactRebuildOptions {
  readonly transport: Transport;
  readonly names: NetworkNames;
  readonly mempool: Pick<Mempool, 'byShortId'>;
  readonly params: ChainParams;
  readonly peers: PeerManager;
  /** Which peers brought us blocks first lately: they are asked first after the forwarder. */
  readonly records?: PeerRecords;
  /** A peer's answer, or undefined once the node stops (node/stop-gate.ts). */
  readonly untilStop: <T>(answer: Promise<T>) => Promise<T | undefined>;
  readonly stopped: () => boolean;
  /** Headers (hex) whose transactions other peers were asked for and none held (fromOthers). */
  readonly noneHeld: BoundedSet<string>;
  readonly stats: { rebuilt: number; fetched: number; fromOthers: number };
}

/**
 * The block a compact block stands for, its transactions from our mempool and, for those we lack,
 * from its forwarder; undefined if they could not be had (sync fetches it whole).
 *
 * Gossipsub drops the copies of the message that other peers forward while the first is judged,
 * so the forwarder is the only peer we know has the block. One that stalls, or answers empty
 * (neither an offence: a slow or restarted honest peer does both), would otherwise hold the
 * block here until the next status poll: the transactions are then asked of other peers, which
 * have had the block as long as it kept us waiting. Their answers are checked against the
 * forwarder's short ids and the header's Merkle root, and cost them nothing when wrong: the
 * short ids were the forwarder's word, not theirs.
 */
export async function rebuildCompact(o: CompactRebuildOptions, forwarder: string, compact: CompactBlock): Promise<SaneBlock | undefined> {
  const { txs, missing } = matchMempool(compact, o.mempool);
  if (missing.length === 0) {
    o.stats.rebuilt++;
  } else {
    o.stats.fetched++;
    const fetched = (await fromForwarder(o, forwarder, compact, missing)) ?? (await fromOthers(o, forwarder, compact, missing));
    if (!fetched || o.stopped()) return undefined;
    missing.forEach((index, k) => (txs[index] = fetched[k]));
  }
  const block = assemble(compact, txs as Transaction[], o.params);
  if (block || o.stopped()) return block;
  // A short-id collision (a transaction of our mempool's sharing one with the block's): all of them.
  const everyIndex = compact.shortIds.map((_, i) => i);
  const all = await fromForwarder(o, forwarder, compact, everyIndex);
  if (all) {
    const whole = assemble(compact, all, o.params);
    // Every transaction from the forwarder, each the one its short id names, and still not the
    // header's: it holds the block it forwarded, so this is a compact block no block makes.
    if (!whole) o.peers.penalize(forwarder, UNMADE_COMPACT_SCORE, 'a compact block whose transactions, from its forwarder, do not make its header');
    return whole;
  }
  const elsewhere = o.stopped() ? undefined : await fromOthers(o, forwarder, compact, everyIndex);
  return elsewhere && !o.stopped() ? assemble(compact, elsewhere, o.params) : undefined;
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
 * them again: the same header with other short ids, from identity after identity, would otherwise
 * cost honest peers these requests per message, for a block its miner never released.
 */
async function fromOthers(o: CompactRebuildOptions, forwarder: string, compact: CompactBlock, indexes: readonly number[]): Promise<Transaction[] | undefined> {
  const hash = toHex(compact.header.hash);
  if (o.stopped() || o.noneHeld.has(hash)) return undefined;
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
  if (txs) o.stats.fromOthers++;
  else if (!held && !o.stopped()) {
    o.noneHeld.add(hash);
  }
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
