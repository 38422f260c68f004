// The explorer: a page per hash route (#/block/…, #/tx/…, #/address/…), a search box, light or
// dark, and the node's live events, which add new blocks to the home page as they come.
import { ApiError, api, coin, h, row } from './dom.js';
import { BLOCK_HEADS, addressPage, blockPage, blockRow, blocksPage, homePage, mempoolPage, nodePage, txPage } from './views.js';

const main = /** @type {HTMLElement} */ (document.getElementById('main'));
const live = /** @type {HTMLElement} */ (document.getElementById('live'));

/** Which page is shown, so a live event knows whether it concerns it. */
let current = '';
/**
 * Counts the pages asked for: a page whose answers come after the next one was asked for (a slow
 * block, then a quick click elsewhere) is dropped, not shown over the page the user went to.
 */
let asked = 0;

async function route() {
  const path = location.hash.replace(/^#/, '') || '/';
  const parts = path.split('/').filter(Boolean);
  current = parts[0] ?? 'home';
  const turn = ++asked;
  /** @param {HTMLElement} page */
  const show = (page) => {
    if (turn === asked) main.replaceChildren(page);
  };
  try {
    let page;
    if (parts.length === 0) page = await homePage();
    else if (parts[0] === 'block' && parts[1]) page = await blockPage(parts[1]);
    else if (parts[0] === 'height' && parts[1]) {
      location.replace(`#/block/${await api(`/block-height/${parts[1]}`)}`);
      return;
    } else if (parts[0] === 'blocks' && parts[1]) page = await blocksPage(Number(parts[1]));
    else if (parts[0] === 'tx' && parts[1]) page = await txPage(parts[1]);
    else if (parts[0] === 'address' && parts[1]) page = await addressPage(parts[1]);
    else if (parts[0] === 'mempool') page = await mempoolPage();
    else if (parts[0] === 'node') page = await nodePage();
    else page = h('p', { class: 'error' }, `No page ${path}`);
    show(page);
  } catch (err) {
    const message = err instanceof ApiError ? `${err.message} (${err.code})` : String(err);
    show(h('p', { class: 'error' }, message));
  }
}

/**
 * Shows the page at `hash`: the same as the one shown is made again (a search for what the page
 * showed before a failed search replaced it would otherwise change nothing, and no hashchange comes).
 * @param {string} hash
 */
function go(hash) {
  if (location.hash === hash) void route();
  else location.hash = hash;
}

/** @param {string} message */
function searchFailed(message) {
  asked++; // a page still loading is not shown over this
  main.replaceChildren(h('p', { class: 'error' }, message));
}

/**
 * What the search box holds: a height, a block hash or a transaction id (both 64 hex digits: the
 * node says which, and that neither when it knows no such hash), or an address (all in upper case
 * too, as a QR code carries it).
 * @param {string} text
 */
async function search(text) {
  const q = text.trim();
  if (q === '') return searchFailed('Type a height, a block hash, a transaction id or an address.');
  if (/^\d{1,10}$/.test(q)) return go(`#/height/${q}`);
  if (/^cairn1/i.test(q)) return go(`#/address/${q === q.toUpperCase() ? q.toLowerCase() : q}`);
  if (/^[0-9a-fA-F]{64}$/.test(q)) {
    const hex = q.toLowerCase();
    for (const [probe, page] of /** @type {[string, string][]} */ ([[`/block/${hex}/status`, 'block'], [`/tx/${hex}/status`, 'tx']])) {
      try {
        await api(probe);
        return go(`#/${page}/${hex}`);
      } catch (err) {
        // Anything but "no such thing" (a node busy reorganising, a network error) is told as it is.
        if (!(err instanceof ApiError && err.status === 404)) return searchFailed(err instanceof ApiError ? `${err.message} (${err.code})` : String(err));
      }
    }
    return searchFailed(`Nothing on this node has the hash ${hex}: no block, and no transaction on the main chain or in the mempool.`);
  }
  searchFailed(`"${q}" is not a height, a block hash, a transaction id or an address.`);
}

/** Light, dark, or as the system says: the toggle cycles, and the choice is remembered. */
function setupTheme() {
  const root = document.documentElement;
  const saved = localStorage.getItem('cairn-theme');
  if (saved === 'light' || saved === 'dark') root.dataset.theme = saved;
  document.getElementById('theme')?.addEventListener('click', () => {
    const dark = root.dataset.theme ? root.dataset.theme === 'dark' : matchMedia('(prefers-color-scheme: dark)').matches;
    root.dataset.theme = dark ? 'light' : 'dark';
    localStorage.setItem('cairn-theme', root.dataset.theme);
  });
}

/** @param {string} text */
function say(text) {
  live.textContent = text;
}

/**
 * The node's events, from `since` (the id of the last event before the first page was fetched):
 * the node replays what came while it loaded, some of which that page may already show.
 * EventSource reconnects by itself with the last id it saw, and the node replays what was missed;
 * when it cannot (too old, or the node restarted) it sends `resync`, and the page is fetched afresh.
 * @param {string | undefined} since
 */
function follow(since) {
  const events = new EventSource(`/events?types=block,reorg${since ? `&since=${encodeURIComponent(since)}` : ''}`);
  events.addEventListener('block', (e) => {
    const b = JSON.parse(/** @type {MessageEvent<string>} */ (e).data);
    say(`new block ${b.height} (${b.tx_count} txs)`);
    // A pending transaction's page: the block may be the one that took it.
    if (current === 'tx' && document.querySelector('#tx-page .tag.pending')) return void route();
    if (current !== 'home') return;
    const tbody = document.querySelector('#recent-blocks tbody');
    // A block that came while the page was made (its list asked for before it, the event before
    // the list was shown) would be a gap under this one: the page is made again, with both.
    if (tbody && Number(tbody.firstElementChild?.firstElementChild?.textContent) < b.height - 1) return void route();
    const tip = document.getElementById('tip-height');
    if (tip && Number(tip.textContent) < b.height) tip.replaceChildren(h('a', { href: `#/block/${b.hash}` }, String(b.height)));
    if (!tbody || tbody.querySelector(`a[href="#/block/${b.hash}"]`)) return;
    tbody.prepend(row(BLOCK_HEADS, blockRow({ ...b, id: b.hash }), { class: 'fresh', 'data-height': b.height }));
    while (tbody.children.length > 10) tbody.lastElementChild?.remove();
  });
  events.addEventListener('reorg', (e) => {
    const r = JSON.parse(/** @type {MessageEvent<string>} */ (e).data);
    say(`reorganisation at ${r.common_ancestor.height}: ${r.disconnected.length} block(s) replaced`);
    // Every page may show what the main chain no longer holds (a block, a confirmation, a
    // balance): each is made again from the node's answers after it.
    void route();
  });
  events.addEventListener('resync', () => {
    say('reconnected: refreshing');
    void route();
  });
  events.addEventListener('error', () => say('live updates paused: reconnecting…'));
}

async function start() {
  setupTheme();
  /** @type {string | undefined} */
  let since;
  try {
    const node = /** @type {{ network: string; unit: string; decimals: number; events: { run: string; latest: number } }} */ (await api('/node'));
    coin.unit = node.unit;
    coin.decimals = node.decimals;
    const net = document.getElementById('network');
    if (net) net.textContent = node.network;
    since = `${node.events.run}:${node.events.latest}`;
  } catch {
    // the pages say what failed
  }
  document.getElementById('search')?.addEventListener('submit', (e) => {
    e.preventDefault();
    const input = /** @type {HTMLInputElement} */ (document.getElementById('search-input'));
    void search(input.value);
  });
  addEventListener('hashchange', () => void route());
  await route();
  follow(since);
}

void start();
