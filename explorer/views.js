// The explorer's pages, each built from the REST API's answers (docs/REST.md).
import { ApiError, api, card, coins, fields, h, link, row, short, table, when } from './dom.js';
import { blockChart, feeChart } from './chart.js';

/**
 * @typedef {{ id: string; height: number; timestamp: number; tx_count: number; size: number; miner: string | null; reward: string; fees: string;
 *   previousblockhash: string | null; merkle_root: string; nonce: string; target: string; difficulty: string; mediantime: number | null; in_best_chain?: boolean }} Block
 * @typedef {{ confirmed: boolean; block_height: number | null; block_hash: string | null; block_time: number | null }} TxStatus
 * @typedef {{ txid: string; from: string; to: string; amount: string; fee: string; nonce: string; size: number; chain_id: number; status: TxStatus; vin?: { is_coinbase: boolean }[] }} Tx
 * @typedef {{ cursor: string | null; kind: 'sent' | 'received' | 'self' | 'coinbase'; txid: string; from: string | null; to: string | null; amount: string | null; fee: string | null;
 *   status: TxStatus; pruned?: true }} AddressLine
 * @typedef {{ state: string; progress: number }} IndexStatus
 * @typedef {{ network: string; unit: string; decimals: number; block_time: number; height: number; tip: string; syncing: boolean; sync_target: number; mining: boolean; mining_waits: string | null; mining_hash_rate: number | null;
 *   peers: { id: string; address: string | null; direction: string | null; height: number | null }[]; address_index: IndexStatus | null;
 *   events: { run: string; latest: number; oldest: number } }} NodeInfo
 */

/** @param {number} height @param {string} [hash] */
const blockLink = (height, hash) => link(hash ? `#/block/${hash}` : `#/height/${height}`, String(height));
/** @param {string} txid */
const txLink = (txid) => link(`#/tx/${txid}`, short(txid), { class: 'mono', title: txid });
/** @param {string | null} address */
const addrLink = (address) => (address ? link(`#/address/${address}`, short(address), { class: 'mono', title: address }) : h('span', { class: 'muted' }, '—'));
/** @param {TxStatus} s */
const statusTag = (s) => (s.confirmed ? h('span', { class: 'tag confirmed' }, `in block ${s.block_height}`) : h('span', { class: 'tag pending' }, 'pending'));

/** @param {Block} b */
export function blockRow(b) {
  return [blockLink(b.height, b.id), h('span', { class: 'mono', title: b.id }, link(`#/block/${b.id}`, short(b.id))), when(b.timestamp), b.tx_count, addrLink(b.miner), h('span', { class: 'hide-narrow' }, `${b.size} B`)];
}

export const BLOCK_HEADS = ['Height', 'Hash', 'Time', '#Txs', 'Miner', 'Size'];

/** Tip, recent blocks (live: app.js adds rows as blocks come), chart, mempool and sync at a glance. */
export async function homePage() {
  const [node, blocks, chart, mempool] = await Promise.all([
    api(/** @type {string} */ ('/node')),
    api('/blocks'),
    api('/chart?count=100'),
    api('/mempool'),
  ]);
  const n = /** @type {NodeInfo} */ (node);
  const m = /** @type {{ count: number; vsize: number }} */ (mempool);
  return h(
    'div',
    {},
    h('div', { class: 'cards' },
      card('Tip', h('span', { id: 'tip-height' }, link(`#/block/${n.tip}`, String(n.height)))),
      card('Mempool', link('#/mempool', `${m.count} txs`)),
      card('Peers', link('#/node', String(n.peers.length))),
      card('Sync', n.syncing ? `syncing to ${n.sync_target}` : 'following the tip'),
      card('Address index', n.address_index ? (n.address_index.state === 'ready' ? 'ready' : `building ${Math.floor(n.address_index.progress * 100)}%`) : 'off'),
    ),
    h('h2', {}, 'Block times and difficulty, recent blocks'),
    blockChart(/** @type {{ height: number; interval: number | null; difficulty: string }[]} */ (chart)),
    h('h2', {}, 'Recent blocks'),
    h('div', { id: 'recent-blocks' }, table(BLOCK_HEADS, /** @type {Block[]} */ (blocks).map(blockRow))),
    h('p', { class: 'more' }, link(`#/blocks/${Math.max(0, n.height - 10)}`, 'Older blocks →')),
  );
}

/** @param {number} start */
export async function blocksPage(start) {
  const blocks = /** @type {Block[]} */ (await api(`/blocks/${start}`));
  const last = blocks.at(-1);
  return h('div', {}, h('h1', {}, `Blocks from ${start}`), table(BLOCK_HEADS, blocks.map(blockRow)), last && last.height > 0 ? h('p', { class: 'more' }, link(`#/blocks/${last.height - 1}`, 'Older blocks →')) : null);
}

const TX_HEADS = ['Id', 'From', 'To', '#Amount', '#Fee'];
/** @param {Tx} t */
const txCells = (t) => [txLink(t.txid), addrLink(t.from), addrLink(t.to), coins(t.amount), coins(t.fee)];

/**
 * A block's transactions: the first page REST gives (25), then a page more at each "More"
 * (/block/:hash/txs/:start), so that a block of thousands costs one page to open.
 * @param {Block} b @param {Tx[]} first
 */
function blockTxs(b, first) {
  const list = table(TX_HEADS, first.map(txCells));
  const body = /** @type {HTMLElement} */ (list.querySelector('tbody'));
  const title = h('h2', {});
  const more = h('button', { type: 'button', id: 'more-txs' }, 'More');
  const failed = h('span', { class: 'failed' });
  const update = () => {
    const shown = body.children.length;
    title.textContent = `Transactions${b.tx_count > shown ? ` (first ${shown} of ${b.tx_count})` : ''}`;
    more.hidden = shown >= b.tx_count;
  };
  more.onclick = async () => {
    more.setAttribute('disabled', '');
    try {
      const page = /** @type {Tx[]} */ (await api(`/block/${b.id}/txs/${body.children.length}`));
      for (const t of page) body.append(row(TX_HEADS, txCells(t)));
      failed.textContent = '';
    } catch (err) {
      failed.textContent = err instanceof ApiError ? ` ${err.message} (${err.code})` : ` ${String(err)}`;
    } finally {
      more.removeAttribute('disabled');
      update();
    }
  };
  update();
  if (first.length === 0) return [title, h('p', { class: 'muted' }, 'None: only the coinbase.')];
  return [title, h('div', { id: 'block-txs' }, list), h('p', { class: 'more' }, more, failed)];
}

/** @param {string} hash */
export async function blockPage(hash) {
  const b = /** @type {Block} */ (await api(`/block/${hash}`));
  const txs = /** @type {Tx[]} */ (await api(`/block/${hash}/txs`));
  return h(
    'div',
    {},
    h('h1', {}, `Block ${b.height}`, b.in_best_chain === false ? h('span', { class: 'tag pending' }, ' not on the main chain') : null),
    fields([
      ['Hash', h('span', { class: 'mono' }, b.id)],
      ['Previous', b.previousblockhash ? link(`#/block/${b.previousblockhash}`, b.previousblockhash, { class: 'mono' }) : '—'],
      ['Time', [when(b.timestamp), ` (${b.timestamp})`]],
      ['Transactions', String(b.tx_count)],
      ['Miner', addrLink(b.miner)],
      ['Reward + fees', `${coins(b.reward)} (fees ${coins(b.fees)})`],
      ['Size', `${b.size} bytes`],
      ['Difficulty', b.difficulty],
      ['Target', h('span', { class: 'mono' }, b.target)],
      ['Nonce', b.nonce],
      ['Merkle root', h('span', { class: 'mono' }, b.merkle_root)],
      ['Raw', link(`/block/${b.id}/raw`, 'binary')],
    ]),
    blockTxs(b, txs),
  );
}

/** @param {string} id */
export async function txPage(id) {
  const t = /** @type {Tx} */ (await api(`/tx/${id}`));
  // A coinbase, asked for by its block's hash (an address line's txid): its block's page says it all.
  if (t.vin?.[0]?.is_coinbase && t.status.block_hash) return blockPage(t.status.block_hash);
  return h(
    'div',
    { id: 'tx-page' },
    h('h1', {}, 'Transaction ', statusTag(t.status)),
    fields([
      ['Id', h('span', { class: 'mono' }, t.txid)],
      ['From', link(`#/address/${t.from}`, t.from, { class: 'mono' })],
      ['To', link(`#/address/${t.to}`, t.to, { class: 'mono' })],
      ['Amount', coins(t.amount)],
      ['Fee', coins(t.fee)],
      ['Nonce', t.nonce],
      ['Block', t.status.confirmed && t.status.block_hash ? [link(`#/block/${t.status.block_hash}`, String(t.status.block_height)), ' ', t.status.block_time ? when(t.status.block_time) : ''] : 'waiting in the mempool'],
      ['Size', `${t.size} bytes`],
      ['Raw', link(`/tx/${t.txid}/raw`, 'binary')],
    ]),
  );
}

/**
 * A line of an address's history. A pruned line is what the address index alone keeps: no amount
 * or counterparty, and no transaction to look up (its index went with the block's body). Its block
 * is linked by height, which a pruned node resolves from the headers it keeps, for certain.
 * @param {AddressLine} l
 */
function addressRow(l) {
  const s = l.status;
  const block = s.block_height === null ? null : s.block_hash && !l.pruned ? `#/block/${s.block_hash}` : `#/height/${s.block_height}`;
  // A coinbase's txid is its block's hash (docs/REST.md): the link is to its block, not to a transaction.
  const what = l.kind === 'coinbase' ? (block ? link(block, 'coinbase') : 'coinbase') : l.pruned ? h('span', { class: 'mono', title: l.txid }, short(l.txid)) : txLink(l.txid);
  const other = l.kind === 'sent' ? addrLink(l.to) : l.kind === 'received' ? addrLink(l.from) : h('span', { class: 'muted' }, '—');
  const amount = l.amount === null ? 'pruned' : coins(l.amount);
  return [h('span', { class: `tag ${l.kind}` }, l.kind), what, other, amount, s.confirmed && block ? link(block, String(s.block_height)) : h('span', { class: 'tag pending' }, 'pending')];
}

/** @param {string} address */
export async function addressPage(address) {
  const a = /** @type {{ address: string; balance: string; nonce: string; chain_stats: { tx_count: number; sent_count: number; received_count: number; coinbase_count: number } | null; mempool_stats: { tx_count: number }; index: IndexStatus | null }} */ (await api(`/address/${address}`));
  const heads = ['Kind', 'Transaction', 'Counterparty', '#Amount', 'Block'];
  const body = h('tbody', {});
  const more = h('button', { type: 'button', id: 'more-history' }, 'More');
  const history = h('div', { id: 'history' });
  /** @param {string | null} cursor */
  const load = async (cursor) => {
    const lines = /** @type {AddressLine[]} */ (await api(`/address/${address}/txs${cursor ? `/chain/${cursor}` : ''}`));
    for (const l of lines) body.append(row(heads, addressRow(l), { class: l.pruned ? 'muted' : undefined }));
    const last = lines.filter((l) => l.cursor).at(-1);
    more.hidden = lines.filter((l) => l.cursor).length < 25 || !last;
    more.onclick = () => void load(last?.cursor ?? null);
  };
  if (a.index?.state === 'ready') {
    history.append(h('table', {}, h('thead', {}, h('tr', {}, heads.map((x) => h('th', { class: x.startsWith('#') ? 'num' : undefined }, x.replace('#', ''))))), body), h('p', { class: 'more' }, more));
    await load(null);
  } else {
    history.append(h('p', { class: 'muted' }, a.index ? `The address index is being built (${Math.floor(a.index.progress * 100)}%): history soon.` : 'This node keeps no address index (--no-address-index).'));
  }
  const s = a.chain_stats;
  return h(
    'div',
    { id: 'address-page' },
    h('h1', {}, 'Address'),
    h('p', { class: 'mono' }, a.address),
    h('div', { class: 'cards' }, card('Balance', coins(a.balance)), card('Nonce', a.nonce), card('Transactions', s ? String(s.tx_count) : '—'), card('Sent / received', s ? `${s.sent_count} / ${s.received_count}` : '—'), card('Coinbases', s ? String(s.coinbase_count) : '—'), card('Pending', String(a.mempool_stats.tx_count))),
    h('h2', {}, 'History, newest first'),
    history,
  );
}

export async function mempoolPage() {
  const [m, recent, fees] = await Promise.all([api('/mempool'), api('/mempool/recent'), api('/fee-estimates')]);
  const mem = /** @type {{ count: number; vsize: number; total_fee: string; fee_histogram: [string, number][] }} */ (m);
  const est = /** @type {Record<string, string>} */ (fees);
  return h(
    'div',
    {},
    h('h1', {}, 'Mempool'),
    h('div', { class: 'cards' }, card('Pending', `${mem.count} txs`), card('Bytes', String(mem.vsize)), card('Fees', coins(mem.total_fee)), card('Next block fee', coins(est['1'] ?? '0')), card('Within 6 blocks', coins(est['6'] ?? '0'))),
    h('h2', {}, 'Fee histogram'),
    mem.fee_histogram.length > 0 ? feeChart(mem.fee_histogram) : h('p', { class: 'muted' }, 'Nothing pending.'),
    h('h2', {}, 'Recently entered'),
    table(TX_HEADS, /** @type {Tx[]} */ (recent).map(txCells)),
  );
}

export async function nodePage() {
  const n = /** @type {NodeInfo} */ (await api('/node'));
  return h(
    'div',
    {},
    h('h1', {}, 'This node'),
    fields([
      ['Network', n.network],
      ['Tip', [link(`#/block/${n.tip}`, String(n.height)), ' ', h('span', { class: 'mono muted' }, short(n.tip))]],
      ['Sync', n.syncing ? `catching up to ${n.sync_target}` : 'following the tip'],
      ['Mining', !n.mining ? 'no' : n.mining_waits ? `waits: ${n.mining_waits}` : `yes, ${(n.mining_hash_rate ?? 0).toLocaleString('en')} H/s (this node, last 10 s)`],
      ['Address index', n.address_index ? `${n.address_index.state} (${Math.floor(n.address_index.progress * 100)}%)` : 'off'],
      ['Events', `${n.events.latest} so far`],
    ]),
    h('h2', {}, `Peers (${n.peers.length})`),
    n.peers.length === 0 ? h('p', { class: 'muted' }, 'No peers connected.') : table(['Peer', 'Address', 'Direction', '#Height'], n.peers.map((p) => [h('span', { class: 'mono', title: p.id }, short(p.id)), p.address ?? '—', p.direction ?? '—', p.height ?? '—'])),
  );
}
