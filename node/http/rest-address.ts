/**
 * The REST API's address paths (Esplora's): an address's balance, nonce and counts, and its lines,
 * pending and confirmed, from the address index a page at a time.
 */
import { toHex } from '../../ledger/bytes.ts';
import { encodeAddress } from '../../ledger/keys.ts';
import type { Block } from '../../ledger/block.ts';
import type { NodeView } from '../view.ts';
import { addressLine, prunedAddressLine, cursorOf, kindOf, parseCursor } from './rest-shapes.ts';
import { addressParam, bad, hashParam, intQuery, isHashText, RestError, type RestAnswer } from './rest-params.ts';
import { bytesEqual } from '../../ledger/bytes.ts';
import { percentDone, type AddressCursor, type AddressIndex } from '../../ledger/address-index.ts';

/** Esplora's address page: 25 lines (at most 100 here). */
export const ADDRESS_PAGE = 25;
export const MAX_ADDRESS_PAGE = 100;
/** Pending transactions of an address shown on its first page, at most (Esplora: 50). */
const ADDRESS_MEMPOOL = 50;
/** Blocks below the tip past which an address's counts are remembered (AddressIndex.counts). */
const SETTLED_DEPTH = 64;

function indexOf(node: NodeView) {
  const index = node.addressIndex;
  if (!index) throw new RestError(501, 'INDEX_OFF', 'this node keeps no address index (it runs with --no-address-index)');
  return index;
}

/** An address's pending transactions as lines, at most ADDRESS_MEMPOOL (Esplora's). */
function pendingLines(node: NodeView, address: Uint8Array, text: string): unknown[] {
  const key = toHex(address);
  const lines: unknown[] = [];
  for (const { tx } of node.mempool.involving(address)) {
    if (lines.length >= ADDRESS_MEMPOOL) break;
    lines.push(addressLine(text, tx.fromKey === tx.toKey ? 'self' : tx.fromKey === key ? 'sent' : 'received', undefined, tx, null));
  }
  return lines;
}

/**
 * Esplora's lines of an address: `all` its pending transactions then a page of confirmed ones,
 * `chain` the page alone (after `cursorText`, if given), `mempool` the pending alone (which
 * needs no address index).
 */
async function addressTxs(node: NodeView, addrText: string, which: 'all' | 'chain' | 'mempool', cursorText: string | undefined, limit: number) {
  const address = addressParam(addrText);
  const text = encodeAddress(address);
  if (which === 'mempool') return pendingLines(node, address, text);
  const index = indexOf(node);
  const status = index.status();
  if (status.state !== 'ready') {
    throw new RestError(503, 'INDEX_BUILDING', `the address index is being built (${percentDone(status.progress)} done); try again soon`);
  }
  const before = cursorText === undefined ? undefined : await cursorAfter(node, index, address, cursorText);
  // As Esplora: a last_seen_txid that is no confirmed line of the address ends the list.
  if (before === null) return [];
  const lines = which === 'all' ? pendingLines(node, address, text) : [];
  const blocks = new Map<number, Block | undefined>();
  for (const e of await index.history(address, limit, before)) {
    if (e.height > 0 && e.height <= node.db.history.prunedHeight) {
      // The index outlives the body: the line says what the index knows, and that the rest is pruned.
      const [header] = await node.chain.byHeight.headers(e.height, 1);
      if (header) lines.push(prunedAddressLine(text, kindOf(e.roles), header, e.position > 0 ? e.id : undefined, cursorOf(e)));
      continue;
    }
    if (!blocks.has(e.height)) blocks.set(e.height, await node.db.getBlockAtHeight(e.height));
    const block = blocks.get(e.height);
    // A reorganisation between the index read and the block read: the next request sees it whole.
    if (!block || (e.position > 0 && block.txs[e.position - 1]?.idHex !== toHex(e.id))) continue;
    lines.push(addressLine(text, kindOf(e.roles), block, e.position > 0 ? block.txs[e.position - 1] : undefined, cursorOf(e)));
  }
  return lines;
}

/**
 * Where the next page starts: after a line's cursor (HEIGHT-POSITION), or after the line of a
 * transaction id (a coinbase's: its block's hash), the last txid of the page before, as Esplora's
 * clients page (`last_seen_txid`); null for an id that is no confirmed line of the address.
 */
async function cursorAfter(node: NodeView, index: AddressIndex, address: Uint8Array, text: string): Promise<AddressCursor | null> {
  const cursor = parseCursor(text);
  if (cursor) return cursor;
  if (!isHashText(text)) throw bad('a cursor is HEIGHT-POSITION, as the last line of the previous page gives it, or the txid of that line (Esplora\'s last_seen_txid)');
  const id = hashParam(text, 'a transaction id');
  const location = await node.db.getTxLocation(id);
  let at: AddressCursor;
  if (location) {
    const header = await node.chain.byHeight.mainHeader(location.blockHash);
    if (!header) return null;
    at = { height: header.height, position: location.index + 1 };
  } else {
    if (node.mempool.has(id)) return null;
    // A coinbase line's txid is its block's hash (rest-shapes.ts addressLine).
    const coinbaseOf = await node.chain.byHeight.mainHeader(id);
    if (coinbaseOf) {
      at = { height: coinbaseOf.height, position: 0 };
    } else {
      const prunedHeight = node.db.history.prunedHeight;
      // A pruned block's transactions leave the transaction index: an empty page would tell the client its history ended there.
      if (prunedHeight > 0) throw new RestError(410, 'PRUNED', `${text} is not in this node's transaction index: unknown, or a transaction or coinbase in a block it pruned (up to height ${prunedHeight}); page by the line's cursor instead`);
      return null;
    }
  }
  const [line] = await index.history(address, 1, { height: at.height, position: at.position + 1 });
  return line && line.height === at.height && line.position === at.position && bytesEqual(line.id, id) ? at : null;
}

/** `/address/:address[/txs[/chain[/:cursor]|/mempool]]`, path parts `p`; undefined for a path none of these. */
export async function answerAddress(node: NodeView, p: readonly string[], query: URLSearchParams): Promise<RestAnswer | undefined> {
  if (p.length < 2) return undefined;
  if (p.length === 2) {
    const address = addressParam(p[1]!);
    const account = (await node.db.getAccount(address)) ?? { balance: 0n, nonce: 0n };
    const pending = node.mempool.involving(address).size;
    const index = node.addressIndex;
    // Counted once below a depth no reorganisation reaches while it runs, then from there on.
    const counts = index && index.status().state === 'ready' ? await index.counts(address, node.chain.tip.height - SETTLED_DEPTH) : undefined;
    return {
      json: {
        address: encodeAddress(address),
        balance: account.balance.toString(),
        nonce: account.nonce.toString(),
        // tx_count as Esplora's: every line of the history its paths list, the coinbases among them.
        chain_stats: counts ? { tx_count: counts.entries, sent_count: counts.sent, received_count: counts.received, coinbase_count: counts.coinbase } : null,
        mempool_stats: { tx_count: pending },
        index: index ? index.status() : null,
      },
    };
  }
  if (p[2] !== 'txs') return undefined;
  const limit = intQuery(query, 'limit', ADDRESS_PAGE, 1, MAX_ADDRESS_PAGE);
  const cursor = query.get('cursor') ?? undefined;
  if (p.length === 3) return { json: await addressTxs(node, p[1]!, cursor === undefined ? 'all' : 'chain', cursor, limit) };
  if (p.length === 4 && p[3] === 'chain') return { json: await addressTxs(node, p[1]!, 'chain', cursor, limit) };
  if (p.length === 5 && p[3] === 'chain') return { json: await addressTxs(node, p[1]!, 'chain', p[4]!, limit) };
  if (p.length === 4 && p[3] === 'mempool') return { json: await addressTxs(node, p[1]!, 'mempool', undefined, limit) };
  return undefined;
}
