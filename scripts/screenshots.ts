/**
 * The explorer's pages as small PNGs in docs/ (home, block, tx, address), from a demo node
 * (scripts/explorer-demo.ts) in headless Chromium: `npm run screenshots`. Needs Debian's
 * chromium (apt-get install -y chromium), as test/explorer.test.ts does.
 */
import { fileURLToPath } from 'node:url';
import puppeteer from 'puppeteer-core';
import { encodeAddress } from '../ledger/keys.ts';
import { demoKey, startDemo } from './explorer-demo.ts';

const DOCS = fileURLToPath(new URL('../docs/', import.meta.url));

const demo = await startDemo({ blocks: 40 });
const browser = await puppeteer.launch({ executablePath: process.env['CHROMIUM'] ?? '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu'] });
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1000, height: 760, deviceScaleFactor: 1 });
  const shoot = async (hash: string, name: string, ready: string, theme: 'light' | 'dark') => {
    await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: theme }]);
    await page.goto(`${demo.url}${hash}`, { waitUntil: 'load' });
    await page.waitForSelector(ready, { timeout: 20_000 });
    await page.screenshot({ path: `${DOCS}explorer-${name}.png`, type: 'png' });
    console.log(`docs/explorer-${name}.png`);
  };
  const tip = demo.node.chain.tip;
  const withTx = await (async () => {
    for (let h = tip.height; h > 0; h--) {
      const b = await demo.node.db.getBlockAtHeight(h);
      if (b && b.txs.length > 0) return b;
    }
    throw new Error('no block with a transaction');
  })();
  await shoot('#/', 'home', '#recent-blocks tbody tr', 'light');
  await shoot(`#/block/${Buffer.from(withTx.header.hash).toString('hex')}`, 'block', 'dl.fields', 'dark');
  await shoot(`#/tx/${withTx.txs[0]!.idHex}`, 'tx', '#tx-page', 'light');
  await shoot(`#/address/${encodeAddress(demoKey(1).address)}`, 'address', '#address-page tbody tr', 'dark');
} finally {
  await browser.close();
  await demo.stop();
}
