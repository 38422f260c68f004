import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { join } from 'node:path';
import { BLOCK_VERSION, makeHeader, type BlockHeader } from '../ledger/block.ts';
import { genesisBlock } from '../ledger/genesis.ts';
import { sha256 } from '../ledger/hash.ts';
import { HeaderChainCheck } from '../consensus/headers.ts';
import { nextTarget } from '../consensus/difficulty.ts';
import { LightHeaders } from '../node/light/headers.ts';
import { MAX_HEADERS_PER_RESPONSE } from '../node/wire.ts';
import { testParams } from '../test/helpers/fixtures.ts';
import { LIGHT_RUNTIME } from '../cli/runtime.ts';
import { below, metric, type Suite } from './report.ts';

/**
 * A light client's memory for a long chain: headers fed to its header store (node/light/headers.ts)
 * in batches of 2,000, each checked as the client checks a peer's (consensus/headers.ts: link,
 * proof of work, ASERT target, timestamps), until the chain is a million headers long. The figure
 * is the growth of the process's memory (resident, and V8's heap plus buffers, after a collection)
 * from before the first header to after the last: what the header chain itself costs. The headers
 * are made on the fly against a target every other hash meets, a batch at a time, and dropped.
 * Its process has `cairn light`'s settings (cli/runtime.ts), not a node's.
 */
const HEADERS = 1_000_000;

function gc(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

function memory() {
  gc();
  const m = process.memoryUsage();
  return { rss: m.rss, js: m.heapUsed + m.external + m.arrayBuffers };
}

export const lightSuite: Suite = {
  name: 'light',
  description: 'light client: memory of a 1M-header chain (headers checked and kept as it keeps them)',
  runtime: LIGHT_RUNTIME,
  async run(ctx) {
    const count = ctx.quick ? HEADERS / 10 : HEADERS;
    const params = testParams({ name: 'cairn-bench-light', target: (1n << 255n) - 1n, timestamp: 1_000_000_000 });
    const genesis = genesisBlock(params).header;
    const dir = ctx.tempDir('cairn-bench-light-');
    const before = memory();
    const store = new LightHeaders(join(dir.path, 'headers'), genesis);
    const staged = store.stage(); // as a sync from one peer: staged, then committed once its claim is shown
    const check = new HeaderChainCheck(params, staged.startAt(0)!, params.timestamp + count * params.blockTime + 3600);
    const stateRoot = sha256(Uint8Array.of(1));
    let parent: BlockHeader = genesis;
    let anchor: number | undefined;
    const started = performance.now();
    while (staged.height < count) {
      const batch: BlockHeader[] = [];
      const works: bigint[] = [];
      for (let i = 0; i < MAX_HEADERS_PER_RESPONSE && parent.height < count; i++) {
        const fields = {
          version: BLOCK_VERSION,
          height: parent.height + 1,
          prevHash: parent.hash,
          merkleRoot: parent.hash,
          stateRoot,
          timestamp: parent.timestamp + params.blockTime,
          target: nextTarget(params, parent, anchor),
        };
        let header = makeHeader({ ...fields, nonce: 0n });
        for (let n = 1n; BigInt('0x' + Buffer.from(header.hash).toString('hex')) > header.target; n++) header = makeHeader({ ...fields, nonce: n });
        if (header.height === 1) anchor = header.timestamp;
        batch.push(header);
        parent = header;
      }
      for (const h of batch) {
        check.extend([h]);
        works.push(check.totalWork);
      }
      staged.append(batch, works);
      if (staged.height % 200_000 === 0) ctx.log(`light: ${staged.height.toLocaleString('en')} headers checked and kept`);
    }
    store.commit();
    const seconds = (performance.now() - started) / 1000;
    const after = memory();
    store.close();
    const mb = (bytes: number) => bytes / 1024 / 1024;
    return [
      metric({
        key: 'lightMemoryMb1mHeaders',
        label: `light client memory for a chain of ${count.toLocaleString('en')} headers (growth)`,
        unit: 'MB',
        runs: [mb(after.rss - before.rss)],
        target: below(50),
        note: `resident set growth; V8 heap + buffers grew ${mb(after.js - before.js).toFixed(1)} MB; the hashes are a ${mb(count * 32).toFixed(0)} MB file; ${Math.round(count / seconds).toLocaleString('en')} headers/s checked and kept (made on the fly)`,
      }),
    ];
  },
};
