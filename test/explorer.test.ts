/**
 * The explorer in a real browser: Debian's headless Chromium (installed by this test when it is
 * missing) driven by puppeteer-core, against a node with a demo chain (scripts/explorer-demo.ts).
 * The page shows a block mined after it loaded without a reload, finds an address by the search
 * box and lists its history, opens a transaction from it, switches light/dark, and asks nothing
 * of any host but the node; a block of more than a page of transactions shows them all, a page at a
 * time. A search says plainly when the node knows no such thing; a reorganisation makes the page
 * shown again (a block it took away, a transaction it put back in the mempool); a slow page asked
 * for before another is not shown over it. On a pruned node, an address's history shows its pruned
 * lines.
 */
import assert from 'node:assert/strict';
import puppeteer, { type Browser, type HTTPRequest, type Page } from 'puppeteer-core';
import { encodeAddress } from '../ledger/keys.ts';
import { DEVNET_PRIVATE_KEY, demoKey, startDemo, type Demo } from '../scripts/explorer-demo.ts';
import { ensureDebianBinary } from './helpers/debian.ts';
import { mineChild } from './helpers/mining.ts';
import { rememberState, stateOfStore } from './helpers/states.ts';

describe('explorer in headless Chromium', function () {
  this.timeout(120_000);
  let demo: Demo;
  let browser: Browser;
  let page: Page;
  const requested: string[] = [];
  const pageErrors: string[] = [];

  before(async function () {
    this.timeout(660_000); // on a machine without Chromium, apt-get installs it first
    const chromium = ensureDebianBinary('chromium', 'chromium');
    demo = await startDemo({ blocks: 12 });
    browser = await puppeteer.launch({ executablePath: chromium, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
    page = await browser.newPage();
    page.on('request', (r) => void requested.push(r.url()));
    page.on('pageerror', (err) => void pageErrors.push(String(err)));
  });
  after(async () => {
    await browser?.close();
    await demo?.stop();
  });

  const text = (selector: string) => page.$eval(selector, (el) => el.textContent ?? '');

  it('shows a new block live, without a reload', async () => {
    await page.goto(demo.url, { waitUntil: 'load' });
    await page.waitForSelector('#recent-blocks tbody tr');
    assert.equal((await text('#recent-blocks tbody tr td')).trim(), '12');
    await page.evaluate('window.loadedOnce = true'); // the main tsconfig has no DOM types: browser code as text
    // The page follows the node's events: wait until its stream is open, then mine.
    await waitForStream();
    await demo.mine();
    await page.waitForSelector('#recent-blocks tbody tr[data-height="13"]', { timeout: 20_000 });
    assert.equal(await page.evaluate('window.loadedOnce'), true, 'the same page, not a reload');
    assert.equal((await text('#tip-height')).trim(), '13');
  });

  it('finds an address by the search box and lists its history; opens a transaction from it', async () => {
    const address = encodeAddress(demoKey(1).address);
    await page.click('#search-input', { count: 3 });
    await page.type('#search-input', address);
    await page.keyboard.press('Enter');
    await page.waitForSelector('#address-page tbody tr');
    const rows = await page.$$eval('#address-page tbody tr', (trs) => trs.map((tr) => tr.textContent ?? ''));
    assert.ok(rows.length >= 2, `history rows: ${rows.join(' | ')}`);
    assert.match(rows[0]!, /received/);
    const txid = await page.$eval('#address-page tbody tr a.mono', (a) => a.getAttribute('title') ?? '');
    assert.match(txid, /^[0-9a-f]{64}$/);
    await page.click('#address-page tbody tr a.mono');
    await page.waitForSelector('#tx-page');
    assert.match(await text('#tx-page'), new RegExp(txid));
    assert.match(await text('#tx-page'), new RegExp(address));
  });

  it('searches a height, a block hash and a transaction id; light and dark', async () => {
    await page.click('#search-input', { count: 3 });
    await page.type('#search-input', '5');
    await page.keyboard.press('Enter');
    await page.waitForFunction("document.querySelector('h1')?.textContent?.startsWith('Block 5')");
    const hash = (await demo.node.db.getHashAtHeight(7))!;
    await page.click('#search-input', { count: 3 });
    await page.type('#search-input', Buffer.from(hash).toString('hex'));
    await page.keyboard.press('Enter');
    await page.waitForFunction("document.querySelector('h1')?.textContent?.startsWith('Block 7')");
    const tx = (await demo.node.db.getBlockAtHeight(1))!.txs[0]!;
    await page.click('#search-input', { count: 3 });
    await page.type('#search-input', tx.idHex);
    await page.keyboard.press('Enter');
    await page.waitForSelector('#tx-page');
    assert.match(await text('#tx-page'), new RegExp(tx.idHex));
    const background = () => page.evaluate('getComputedStyle(document.body).backgroundColor');
    await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'light' }]);
    const light = await background();
    await page.click('#theme');
    assert.equal(await page.evaluate('document.documentElement.dataset.theme'), 'dark');
    assert.notEqual(await background(), light, 'the toggle changes the colours');
  });

  it('lists all the transactions of a block of more than a page, a page at a time', async () => {
    for (let i = 0; i < 30; i++) await demo.pay(DEVNET_PRIVATE_KEY, demoKey(5).address, 100_000n + BigInt(i));
    await demo.mine();
    const block = (await demo.node.db.getBlockAtHeight(demo.node.chain.tip.height))!;
    assert.ok(block.txs.length > 25 && block.txs.length <= 50, `${block.txs.length} transactions: two pages`);
    await page.goto(`${demo.url}#/block/${Buffer.from(block.header.hash).toString('hex')}`, { waitUntil: 'load' });
    const txLinks = 'main tbody a[href^="#/tx/"]';
    const ids = () => page.$$eval(txLinks, (links) => links.map((a) => a.getAttribute('title') ?? ''));
    await page.waitForSelector(txLinks);
    assert.equal((await ids()).length, 25);
    assert.match(await text('main h2'), new RegExp(`first 25 of ${block.txs.length}`));
    assert.ok(await page.$('#more-txs'), 'a control that shows the next page');
    await page.click('#more-txs');
    await page.waitForFunction(`document.querySelectorAll('${txLinks}').length === ${block.txs.length}`);
    assert.deepEqual(await ids(), block.txs.map((tx) => tx.idHex));
    assert.equal(await page.$eval('#more-txs', (b) => b.hasAttribute('hidden')), true, 'nothing more to show');
    assert.equal(await text('main h2'), 'Transactions');
  });

  it('shows every block found while the page loaded, once: its event stream starts where the node\'s first answer left off', async () => {
    // Hold back the page's blocks, find one (after the page's first /node); then its event stream
    // (asked for once the page is shown), find one; let it go, and find one more.
    const held = new Map<string, HTTPRequest>();
    const hold = (r: HTTPRequest) => {
      const path = new URL(r.url()).pathname;
      if (path === '/blocks' || path === '/events') held.set(path, r);
      else void r.continue();
    };
    await page.setRequestInterception(true);
    page.on('request', hold);
    try {
      await page.goto(demo.url, { waitUntil: 'load' });
      await waitUntil(() => held.has('/blocks'), 'the page never asked for its blocks');
      const before = demo.node.chain.tip.height;
      await demo.mine();
      await held.get('/blocks')!.continue();
      await waitUntil(() => held.has('/events'), 'the page never asked for its event stream');
      assert.equal((await text('#recent-blocks tbody tr td')).trim(), String(before + 1));
      await demo.mine();
      const opened = page.waitForResponse((r) => new URL(r.url()).pathname === '/events');
      await held.get('/events')!.continue();
      await opened;
      await demo.mine();
      await page.waitForSelector(`#recent-blocks tbody tr[data-height="${before + 3}"]`, { timeout: 20_000 });
      const heights = await page.$$eval('#recent-blocks tbody tr', (trs) => trs.map((tr) => Number(tr.firstElementChild?.textContent)));
      assert.deepEqual(heights.slice(0, 5), [before + 3, before + 2, before + 1, before, before - 1], 'every height once, newest first');
      assert.equal((await text('#tip-height')).trim(), String(before + 3));
    } finally {
      page.off('request', hold);
      for (const r of held.values()) if (!r.isInterceptResolutionHandled()) await r.continue();
      await page.setRequestInterception(false);
    }
  });

  it('shows no gap in the recent blocks when one came while the home page was made: its list answered before it, its event before the list was shown', async () => {
    await page.goto(`${demo.url}#/node`, { waitUntil: 'load' });
    await page.waitForFunction("document.querySelector('h1')?.textContent === 'This node'");
    const before = demo.node.chain.tip.height;
    const stale = await (await fetch(`${demo.url}blocks`)).text();
    let held: HTTPRequest | undefined;
    const hold = (r: HTTPRequest) => {
      if (new URL(r.url()).pathname === '/blocks') held = r;
      else void r.continue();
    };
    await page.setRequestInterception(true);
    page.on('request', hold);
    try {
      await page.evaluate("location.hash = '#/'");
      await waitUntil(() => held !== undefined, 'the home page never asked for its blocks');
      await demo.mine();
      await page.waitForFunction(`document.getElementById('live')?.textContent?.startsWith('new block ${before + 1} ')`);
      await held!.respond({ status: 200, contentType: 'application/json', body: stale });
      await page.waitForSelector('#recent-blocks tbody tr');
    } finally {
      page.off('request', hold);
      await page.setRequestInterception(false);
    }
    await demo.mine();
    await page.waitForFunction(`document.querySelector('#recent-blocks tbody tr td')?.textContent === '${before + 2}'`);
    const heights = await page.$$eval('#recent-blocks tbody tr', (trs) => trs.map((tr) => Number(tr.firstElementChild?.textContent)));
    assert.deepEqual(heights.slice(0, 3), [before + 2, before + 1, before]);
  });

  it('says plainly when a search finds nothing or is malformed; takes an address in upper case; the page searched for again after a failed search comes back', async () => {
    const search = async (q: string) => {
      await page.click('#search-input', { count: 3 });
      await page.keyboard.press('Backspace');
      await page.type('#search-input', q);
      await page.keyboard.press('Enter');
    };
    const address = encodeAddress(demoKey(2).address);
    await search(address.toUpperCase());
    await page.waitForSelector('#address-page');
    assert.equal(await page.evaluate('location.hash'), `#/address/${address}`);
    const nothing = 'ab'.repeat(32);
    await search(nothing.toUpperCase());
    await page.waitForSelector('main .error');
    assert.equal(await text('main .error'), `Nothing on this node has the hash ${nothing}: no block, and no transaction on the main chain or in the mempool.`);
    await search('12ab');
    await page.waitForFunction(`document.querySelector('main .error')?.textContent?.startsWith('"12ab" is not')`);
    // The address page is still the location: searched for again, it is shown again.
    await search(address);
    await page.waitForSelector('#address-page');
  });

  it('a block page and a transaction page whose block a reorganisation took away say so, without a reload', async () => {
    const fork = demo.node.chain.tip;
    rememberState(fork.hash, await stateOfStore(demo.node.db));
    const tx = await demo.pay(DEVNET_PRIVATE_KEY, demoKey(6).address, 7_000_000n);
    await demo.mine();
    const gone = demo.node.chain.tip;
    assert.equal(gone.height, fork.height + 1);
    await page.goto(`${demo.url}#/block/${gone.hashHex}`, { waitUntil: 'load' });
    await page.waitForFunction(`document.querySelector('h1')?.textContent === 'Block ${gone.height}'`);
    const txView = await browser.newPage();
    txView.on('pageerror', (err) => void pageErrors.push(String(err)));
    try {
      // Two pages, one in the background: waits poll on changes to the page, not on animation frames (none in the background).
      await txView.goto(`${demo.url}#/tx/${tx.idHex}`, { waitUntil: 'load' });
      await txView.waitForSelector('#tx-page .tag.confirmed');
      await page.evaluate('window.loadedOnce = true');
      // Both pages asked /node for the latest event before showing: their streams replay from there.
      const c1 = mineChild(demo.params, fork, [], { spacing: 1, miner: demoKey(7).address });
      const c2 = mineChild(demo.params, { hash: c1.header.hash, height: c1.header.height, header: c1.header, anchorTimestamp: fork.anchorTimestamp }, [], { spacing: 1, miner: demoKey(7).address });
      assert.equal(await demo.node.chain.processBlock(c1), 'side-branch');
      assert.equal(await demo.node.chain.processBlock(c2), 'connected');
      await page.waitForFunction(`document.querySelector('h1')?.textContent === 'Block ${gone.height} not on the main chain'`, { timeout: 20_000, polling: 'mutation' });
      assert.equal(await page.evaluate('window.loadedOnce'), true, 'the same page, not a reload');
      await txView.waitForSelector('#tx-page .tag.pending', { timeout: 20_000 });
      // Back in the mempool, it is confirmed again by the next block, and its page says so.
      await demo.mine();
      await txView.waitForFunction(`document.querySelector('#tx-page .tag.confirmed')?.textContent === 'in block ${demo.node.chain.tip.height}'`, { timeout: 20_000, polling: 'mutation' });
    } finally {
      await txView.close();
    }
  });

  it('shows the page asked for last: a slow answer for the one before it does not replace it', async () => {
    const slow = (await demo.node.db.getHashAtHeight(3))!;
    const slowHex = Buffer.from(slow).toString('hex');
    const held: HTTPRequest[] = [];
    const hold = (r: HTTPRequest) => {
      if (new URL(r.url()).pathname === `/block/${slowHex}`) held.push(r);
      else void r.continue();
    };
    await page.goto(`${demo.url}#/node`, { waitUntil: 'load' });
    await page.waitForFunction("document.querySelector('h1')?.textContent === 'This node'");
    // Each answer's JSON, once read, is noted a turn later: after everything its reader did with it.
    await page.evaluate(`{
      const read = Response.prototype.json;
      window.readAnswers = [];
      Response.prototype.json = async function () {
        const value = await read.call(this);
        setTimeout(() => window.readAnswers.push(new URL(this.url).pathname), 0);
        return value;
      };
    }`);
    await page.setRequestInterception(true);
    page.on('request', hold);
    try {
      await page.evaluate(`location.hash = '#/block/${slowHex}'`);
      await waitUntil(() => held.length > 0, 'the page never asked for the block');
      await page.evaluate("location.hash = '#/mempool'");
      await page.waitForFunction("document.querySelector('h1')?.textContent === 'Mempool'");
      await held[0]!.continue();
      await page.waitForFunction(`window.readAnswers.includes('/block/${slowHex}/txs')`);
      assert.equal(await text('h1'), 'Mempool');
    } finally {
      page.off('request', hold);
      for (const r of held) if (!r.isInterceptResolutionHandled()) await r.continue();
      await page.setRequestInterception(false);
    }
  });

  it('loaded nothing from anywhere but the node, and threw no error', () => {
    const foreign = requested.filter((u) => !u.startsWith(demo.url));
    assert.deepEqual(foreign, []);
    assert.deepEqual(pageErrors, []);
  });

  /** The page's EventSource is connected once the node's feed has a listener. */
  const waitForStream = () => waitUntil(() => demo.http.feed.subscribers > 0, 'the page never opened its event stream');

  async function waitUntil(condition: () => boolean, failure: string): Promise<void> {
    const deadline = Date.now() + 20_000;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(failure);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
});

describe('explorer in headless Chromium, on a pruned node', function () {
  this.timeout(120_000);
  const KEEP = 8;
  let demo: Demo;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  before(async function () {
    this.timeout(660_000);
    const chromium = ensureDebianBinary('chromium', 'chromium');
    demo = await startDemo({ blocks: 40, pruneKeep: KEEP });
    browser = await puppeteer.launch({ executablePath: chromium, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
    page = await browser.newPage();
    page.on('pageerror', (err) => void pageErrors.push(String(err)));
  });
  after(async () => {
    await browser?.close();
    await demo?.stop();
  });

  it('lists an address\'s history with its pruned lines marked so, their blocks linked by height, which says the block is pruned', async () => {
    assert.equal(demo.node.db.history.prunedHeight, 40 - KEEP - 1);
    const address = encodeAddress(demoKey(1).address);
    const lines = (await (await fetch(`${demo.url}address/${address}/txs`)).json()) as { pruned?: true; status: { confirmed: boolean; block_height: number | null; block_hash: string | null } }[];
    assert.ok(lines.some((l) => l.pruned) && lines.some((l) => l.status.confirmed && !l.pruned), 'the history has pruned lines and kept ones');
    await page.goto(`${demo.url}#/address/${address}`, { waitUntil: 'load' });
    await page.waitForSelector('#address-page tbody tr, main .error');
    assert.equal(await page.$eval('main', (m) => m.querySelector('.error')?.textContent ?? null), null);
    const rows = await page.$$eval('#address-page tbody tr', (trs) =>
      trs.map((tr) => ({ muted: tr.classList.contains('muted'), amount: tr.children[3]?.textContent ?? '', block: tr.children[4]?.querySelector('a')?.getAttribute('href') ?? null })),
    );
    assert.deepEqual(
      rows.map((r) => [r.muted, r.amount === 'pruned', r.block]),
      lines.map((l) => [l.pruned === true, l.pruned === true, !l.status.confirmed ? null : l.pruned ? `#/height/${l.status.block_height}` : `#/block/${l.status.block_hash}`]),
    );
    const first = lines.findIndex((l) => l.pruned);
    await page.click(`#address-page tbody tr:nth-child(${first + 1}) td:last-child a`);
    await page.waitForSelector('main .error');
    assert.match(await page.$eval('main .error', (e) => e.textContent ?? ''), new RegExp(`^block ${lines[first]!.status.block_height} is pruned: .*\\(PRUNED\\)$`));
    assert.deepEqual(pageErrors, []);
  });
});
