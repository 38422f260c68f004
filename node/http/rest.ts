/**
 * The REST API's routes (Esplora's paths where an account model allows), answered from a
 * NodeView. Read-only but for `POST /tx`. Pure over the node: the HTTP server (server.ts) turns
 * an answer into a response, and a RestError into a JSON error with a code.
 */
import { bytesEqual, toHex } from '../../ledger/bytes.ts';
import { CairnError, DecodeError } from '../../ledger/errors.ts';
import { TX_BYTES, decodeTransactionHex, type Transaction } from '../../ledger/transaction.ts';
import { decodeBlock, type Block, type BlockHeader } from '../../ledger/block.ts';
import { blockCapacity, estimateFee, findTransaction } from '../chain-info.ts';
import type { NodeView } from '../view.ts';
import { prunedEntry } from '../pruner.ts';
import type { EventFeed } from './events.ts';
import { blockJson, coinbaseJson, confirmedIn, txJson, UNCONFIRMED } from './rest-shapes.ts';
import { bad, hashParam, heightParam, intQuery, notFound, RestError, type RestAnswer } from './rest-params.ts';
import { answerAddress } from './rest-address.ts';
import { SharedBody } from './compress.ts';
import { readSettled, ReorganisingError, untilSettled } from '../reorg-wait.ts';
import { blockWork } from '../../consensus/pow.ts';
import { medianTimePast } from '../../consensus/block-index.ts';
import { MEDIAN_SPAN } from '../../consensus/chain-index.ts';
import { medianOf } from '../../consensus/header-rules.ts';

export { RestError, type RestAnswer };

/** Esplora's page sizes: ten blocks, 25 transactions of a block (an address's: rest-address.ts). */
export const BLOCKS_PAGE = 10;
export const BLOCK_TXS_PAGE = 25;
/** A chart over more blocks than this reads too much for one request. */
export const MAX_CHART_BLOCKS = 1000;

/**
 * What a pruned node answers for a body it deleted: 410 with code PRUNED, and how far it prunes
 * (its headers, the state and the address index stay; a node that keeps everything has the body).
 */
const pruned = (what: string, height: number) =>
  new RestError(410, 'PRUNED', `${what} is pruned: this node keeps block bodies only above height ${height} (headers, the state and the address index stay)`);

/** On a pruned node, why something stored with a block may not be found. */
function prunedNote(node: NodeView): string {
  const height = node.db.history.prunedHeight;
  return height > 0 ? ` (this node prunes: blocks up to ${height} keep only their headers here)` : '';
}

async function blockByHash(node: NodeView, text: string): Promise<Block> {
  const hash = hashParam(text, 'a block hash');
  const block = await node.db.getBlock(hash);
  if (block) return block;
  const deleted = prunedEntry(node.chain, hash);
  if (deleted) throw pruned(`block ${deleted.height}`, node.db.history.prunedHeight);
  throw notFound(`no block ${text}${prunedNote(node)}`);
}

/** A block's header, from the block index or, on the main chain, the store: a pruned body's too. */
async function headerByHash(node: NodeView, text: string): Promise<BlockHeader> {
  const hash = hashParam(text, 'a block hash');
  return node.chain.getEntry(hash)?.header ?? (await node.chain.byHeight.mainHeader(hash)) ?? (await blockByHash(node, text)).header;
}

/** Esplora's block status: from the header, so a block whose body was pruned has one too. */
async function blockStatus(node: NodeView, text: string) {
  const header = await headerByHash(node, text);
  const main = await node.chain.byHeight.isMain(header.hash, header.height);
  const next = main ? await node.chain.byHeight.hashAt(header.height + 1) : undefined;
  return { in_best_chain: main, height: header.height, next_best: next ? toHex(next) : null };
}

/**
 * A transaction with its block, pending or on the main chain; or, by its block's hash, a main-chain
 * block's coinbase: what an address line's `txid` names for one (shapes.ts addressLine), which a
 * wallet looks up as it looks up every txid of a history.
 */
async function findTx(node: NodeView, text: string): Promise<{ tx: Transaction; block?: Block } | { coinbaseOf: Block }> {
  const id = hashParam(text, 'a transaction id');
  const found = await findTransaction(node.chain, node.mempool, id);
  if (found) return found;
  const block = await node.db.getBlock(id);
  if (block && (await node.chain.byHeight.isMain(block.header.hash, block.header.height))) return { coinbaseOf: block };
  const deleted = block ? undefined : prunedEntry(node.chain, id);
  if (deleted && (await node.chain.byHeight.isMain(deleted.hash, deleted.height))) throw pruned(`the coinbase of block ${deleted.height}`, node.db.history.prunedHeight);
  throw notFound(`no transaction ${text} on the main chain or in the mempool${prunedNote(node)}`);
}

/**
 * The median time past of the main-chain blocks `hashes`, heights from `from` on, as the timestamp
 * rule takes it, from the stored headers: the block index cuts its lowest entry's parent link, so
 * a walk of its entries near there sees fewer than 11 timestamps, and below it none. Null for a
 * height the main chain left meanwhile (a reorganisation between reads).
 */
async function medianTimes(node: NodeView, from: number, hashes: readonly Uint8Array[]): Promise<(number | null)[]> {
  const lowest = Math.max(0, from - MEDIAN_SPAN);
  const headers = await node.chain.byHeight.headers(lowest, from + hashes.length - lowest);
  return hashes.map((hash, i) => {
    const at = from + i - lowest;
    const header = headers[at];
    if (!header || !bytesEqual(header.hash, hash)) return null;
    return medianOf(headers.slice(Math.max(0, at - MEDIAN_SPAN), at + 1).map((h) => h.timestamp));
  });
}

/** A page of main-chain blocks, newest first from `start`; it ends where a pruned node's bodies do. */
async function blocksFrom(node: NodeView, start: number) {
  // As Esplora: a page that would start above the tip is none, not the tip's page again.
  if (start > node.chain.tip.height) throw notFound(`no main-chain block at height ${start} (the tip is at ${node.chain.tip.height})`);
  if (start > 0 && start <= node.db.history.prunedHeight) throw pruned(`block ${start}`, node.db.history.prunedHeight);
  const from = Math.max(0, start - BLOCKS_PAGE + 1);
  const hashes = await node.chain.byHeight.hashes(from, start - from + 1);
  const bodies = await node.db.getBlocksBytes(hashes);
  const times = await medianTimes(node, from, hashes);
  const out = [];
  for (let i = hashes.length - 1; i >= 0; i--) {
    const bytes = bodies[i];
    if (!bytes) break;
    out.push(blockJson(decodeBlock(bytes), times[i]!));
  }
  return out;
}

/**
 * Buckets of pending fees, highest first: [fee, bytes] as Esplora's [feerate, vsize] (every
 * transfer has one size), the fee a decimal string as every amount here: a fee may exceed 2^53,
 * which a JSON number would round.
 */
function feeHistogram(node: NodeView): [string, number][] {
  const sorted: [bigint, number][] = [];
  for (const fee of node.mempool.feesHighestFirst()) {
    if (sorted.at(-1)?.[0] === fee) sorted.at(-1)![1] += TX_BYTES;
    else sorted.push([fee, TX_BYTES]);
  }
  const buckets: [string, number][] = sorted.slice(0, 39).map(([fee, bytes]) => [fee.toString(), bytes]);
  // The cheapest fees share one last bucket, so the answer stays small however varied the fees;
  // as each bucket, it is labelled with the least fee in it (Esplora's lower bound).
  const rest = sorted.slice(39);
  if (rest.length > 0) buckets.push([rest.at(-1)![0].toString(), rest.reduce((s, [, b]) => s + b, 0)]);
  return buckets;
}

/** Esplora's /fee-estimates: for a confirmation within N blocks, the fee (base units, a decimal string) to pay. */
async function feeEstimates(node: NodeView): Promise<Record<string, string>> {
  const next = await estimateFee(node.chain, node.mempool);
  const capacity = blockCapacity(node.chain);
  const fees = node.mempool.feesHighestFirst();
  const min = node.mempool.policy.minFee;
  const out: Record<string, string> = { '1': next.fee };
  for (const n of [2, 3, 6, 12, 24, 144]) {
    const beat = capacity > 0 && fees.length >= n * capacity ? fees[n * capacity - 1]! + 1n : min;
    out[String(n)] = (beat > min ? beat : min).toString();
  }
  return out;
}

/**
 * What requests share, kept by the HTTP server: the clock (performance.now(), ms) and the last
 * /mempool/txids answer.
 */
export interface RestShared {
  readonly now: () => number;
  mempoolTxids?: { readonly at: number; readonly body: SharedBody };
}

/** How long a /mempool/txids answer is given again (Esplora's may be 10 s old: its Cache-Control). */
export const MEMPOOL_TXIDS_MS = 1000;

/**
 * Every pending id (Esplora's /mempool/txids). A full pool's 200,000 are 13 MB of JSON, 50 ms to
 * write out and 0.4 s to gzip: made at most once a MEMPOOL_TXIDS_MS and the same bytes sent to
 * every request meanwhile, rather than made, held and gzipped again for each.
 */
function mempoolTxids(node: NodeView, shared: RestShared | undefined): SharedBody {
  const kept = shared?.mempoolTxids;
  const now = shared?.now() ?? 0;
  if (kept && now - kept.at < MEMPOOL_TXIDS_MS) return kept.body;
  const body = new SharedBody(JSON.stringify(Array.from(node.mempool.entries(), (e) => e.tx.idHex)));
  if (shared) shared.mempoolTxids = { at: now, body };
  return body;
}

/** The first parts of the paths a GET (or HEAD) is answered on. */
const READ_PATHS = new Set(['blocks', 'block', 'block-height', 'tx', 'address', 'mempool', 'fee-estimates', 'node', 'chart']);

/** The methods the API answers on `path` (an `Allow` header), undefined for a path not its. */
export function allowedMethods(path: string): string | undefined {
  if (path === '/tx') return 'POST';
  return READ_PATHS.has(path.split('/')[1]!) ? 'GET, HEAD' : undefined;
}

/**
 * Answers one request, or undefined for a path that is not the API's. `body` is the request's
 * text for POST.
 */
export async function answerRest(node: NodeView, feed: EventFeed, method: string, path: string, query: URLSearchParams, body: string | undefined, shared?: RestShared): Promise<RestAnswer | undefined> {
  let p: string[];
  try {
    p = path.split('/').slice(1).map(decodeURIComponent);
  } catch {
    throw bad(`not a valid path: ${path.slice(0, 200)} (a % escape that is not UTF-8)`);
  }
  if (method === 'POST') {
    if (path !== '/tx') return undefined;
    let tx: Transaction;
    try {
      tx = decodeTransactionHex((body ?? '').trim());
    } catch (err) {
      if (err instanceof DecodeError) throw bad(`not a transaction: ${err.message}`);
      throw err;
    }
    try {
      // Judged against the state, which mid-way through a reorganisation is the fork point's.
      await untilSettled(node).catch(unavailable);
      await node.submitTransaction(tx);
    } catch (err) {
      if (err instanceof CairnError) throw new RestError(400, err.code, err.message);
      throw err;
    }
    return { text: tx.idHex };
  }
  if (method !== 'GET' && method !== 'HEAD') return undefined;
  // Mid-way through a reorganisation the main chain ends at the fork point and the state is its:
  // a tip, balances and histories that neither the chain before nor the one after has.
  return readSettled(node, () => answerRead(node, feed, p, query, shared)).catch(unavailable);
}

/** A reorganisation that outlasted REORG_WAIT_MS: 503, ask again after Retry-After; other errors as they are. */
function unavailable(err: unknown): never {
  if (err instanceof ReorganisingError) throw new RestError(503, err.code, err.message, err.retryAfterSeconds);
  throw err;
}

/** Answers a GET of path parts `p` (a pure read: made again if a reorganisation began meanwhile). */
async function answerRead(node: NodeView, feed: EventFeed, p: readonly string[], query: URLSearchParams, shared: RestShared | undefined): Promise<RestAnswer | undefined> {
  const tip = node.chain.tip;
  switch (p[0]) {
    case 'blocks':
      if (p.length === 1) return { json: await blocksFrom(node, tip.height) };
      if (p[1] === 'tip' && p[2] === 'height' && p.length === 3) return { text: String(tip.height) };
      if (p[1] === 'tip' && p[2] === 'hash' && p.length === 3) return { text: tip.hashHex };
      if (p.length === 2) return { json: await blocksFrom(node, heightParam(p[1]!)) };
      return undefined;
    case 'block': {
      if (p.length < 2) return undefined;
      if (p[2] === 'status' && p.length === 3) return { json: await blockStatus(node, p[1]!) };
      if (p[2] === 'header' && p.length === 3) return { text: toHex((await headerByHash(node, p[1]!)).bytes) };
      const block = await blockByHash(node, p[1]!);
      const main = await node.chain.byHeight.isMain(block.header.hash, block.header.height);
      if (p.length === 2) {
        // A side branch's entries reach the 10 blocks below its fork point: the window keeps them.
        const entry = main ? undefined : node.chain.getEntry(block.header.hash);
        const mediantime = main ? (await medianTimes(node, block.header.height, [block.header.hash]))[0]! : entry ? medianTimePast(entry) : null;
        return { json: { ...blockJson(block, mediantime), in_best_chain: main } };
      }
      if (p[2] === 'raw' && p.length === 3) return { bytes: block.bytes, immutable: true };
      // Its transfers, as /txs lists them: the coinbase is the block object's (miner, reward).
      if (p[2] === 'txids' && p.length === 3) return { json: block.txs.map((tx) => tx.idHex) };
      if (p[2] === 'txid' && p.length === 4) {
        const tx = block.txs[heightParam(p[3]!, 'an index')];
        if (!tx) throw notFound(`block ${p[1]} has ${block.txs.length} transfers, numbered from 0`);
        return { text: tx.idHex };
      }
      if (p[2] === 'txs' && p.length <= 4) {
        const start = p[3] === undefined ? 0 : heightParam(p[3], 'a start');
        if (start % BLOCK_TXS_PAGE !== 0) throw bad(`start must be a multiple of ${BLOCK_TXS_PAGE}`);
        // As Esplora: a page past the last is none (a client pages until this), not an empty list;
        // a block of no transfers has its one empty page.
        if (start > 0 && start >= block.txs.length) throw notFound(`block ${p[1]} has ${block.txs.length} transfers: no page starts at ${start}`);
        const status = main ? confirmedIn(block) : UNCONFIRMED;
        return { json: block.txs.slice(start, start + BLOCK_TXS_PAGE).map((tx) => txJson(tx, status)) };
      }
      return undefined;
    }
    case 'block-height': {
      if (p.length !== 2) return undefined;
      const hash = await node.chain.byHeight.hashAt(heightParam(p[1]!));
      if (!hash) throw notFound(`no main-chain block at height ${p[1]} (the tip is at ${tip.height})`);
      return { text: toHex(hash) };
    }
    case 'tx': {
      if (p.length < 2 || p.length > 3) return undefined;
      const found = await findTx(node, p[1]!);
      if ('coinbaseOf' in found) {
        const block = found.coinbaseOf;
        if (p.length === 2) return { json: coinbaseJson(block, node.params.chainId) };
        if (p[2] === 'status') return { json: confirmedIn(block) };
        if (p[2] === 'raw' || p[2] === 'hex') throw notFound(`${p[1]} is the coinbase of block ${block.header.height}, which has no encoding of its own: its block's holds it (/block/${p[1]}/raw)`);
        return undefined;
      }
      const { tx, block } = found;
      const status = block ? confirmedIn(block) : UNCONFIRMED;
      if (p.length === 2) return { json: txJson(tx, status) };
      if (p[2] === 'status') return { json: status };
      if (p[2] === 'raw') return { bytes: tx.bytes, immutable: true };
      if (p[2] === 'hex') return { text: toHex(tx.bytes) };
      return undefined;
    }
    case 'address':
      return answerAddress(node, p, query);
    case 'mempool': {
      if (p.length === 1) {
        return { json: { count: node.mempool.size, vsize: node.mempool.bytes, total_fee: node.mempool.fees.toString(), fee_histogram: feeHistogram(node) } };
      }
      // Esplora's names for its fields (value, vsize) beside ours, which the events and the explorer read.
      if (p[1] === 'recent' && p.length === 2) return { json: feed.recentTxs().map((t) => ({ ...t, value: t.amount, vsize: t.size })) };
      if (p[1] === 'txids' && p.length === 2) return { shared: mempoolTxids(node, shared) };
      return undefined;
    }
    case 'fee-estimates':
      return p.length === 1 ? { json: await feeEstimates(node) } : undefined;
    case 'node':
      return p.length === 1 ? { json: nodeJson(node, feed) } : undefined;
    case 'chart': {
      if (p.length !== 1) return undefined;
      const count = intQuery(query, 'count', 100, 2, MAX_CHART_BLOCKS);
      // From the store below the block index's window: a chart may reach deeper than it.
      const from = Math.max(0, tip.height - count + 1);
      const headers = await node.chain.byHeight.headers(Math.max(0, from - 1), tip.height - Math.max(0, from - 1) + 1);
      const out = [];
      for (let i = from === 0 ? 0 : 1; i < headers.length; i++) {
        const h = headers[i]!;
        const prev = i > 0 ? headers[i - 1] : undefined;
        out.push({ height: h.height, timestamp: h.timestamp, interval: prev ? h.timestamp - prev.timestamp : null, difficulty: blockWork(h.target).toString() });
      }
      return { json: out };
    }
    default:
      return undefined;
  }
}

/** What the explorer shows of the node itself: tip, peers, sync, the index. Cairn's own. */
function nodeJson(node: NodeView, feed: EventFeed) {
  const peerHeights = new Map([...node.sync.statuses].map(([peer, s]) => [peer, s.status.height]));
  return {
    network: node.params.name,
    unit: node.params.unit,
    decimals: node.params.decimals,
    block_time: node.params.blockTime,
    height: node.chain.tip.height,
    tip: node.chain.tip.hashHex,
    syncing: node.sync.syncing,
    sync_target: node.sync.targetHeight,
    mining: node.mining,
    // Why a mining node does not mine (it has not caught up), and what its own threads hash.
    mining_waits: node.miner?.held ?? null,
    mining_hash_rate: node.miner ? Math.round(node.miner.hashRate) : null,
    peers: node.transport.peers().map((id) => ({ id, address: node.transport.connectionInfo(id)?.remoteAddr ?? null, direction: node.transport.connectionInfo(id)?.direction ?? null, height: peerHeights.get(id) ?? null })),
    address_index: node.addressIndex ? node.addressIndex.status() : null,
    events: { run: feed.runId, latest: feed.latest, oldest: feed.oldest },
  };
}
