/**
 * Child process of test/light-restart.test.ts: a light client's header store (node/light/headers.ts)
 * written as sync rounds write it, until the process is killed.
 *
 *   node test/helpers/light-headers-writer.ts <path> <seed>
 *
 * Each round stages headers: a batch on the tip, or a branch from a fork within the headers kept
 * whole (a reorganisation), and then commits them or drops them (a peer that did not show its
 * claim). Lines on stdout are written synchronously, so a line the parent reads is a fact:
 *
 *   open <height> <hash>                 the tip found on opening
 *   begin <fork> <hash,hash,...>         about to commit: the chain becomes ours up to the fork, then these
 *   done                                 committed
 *
 * Between a "begin" and its "done" the store may open at either chain, never at another.
 */
import { writeSync } from 'node:fs';
import { flushCompileCache } from 'node:module';
import { toHex } from '../../ledger/bytes.ts';
import type { BlockHeader } from '../../ledger/block.ts';
import { genesisBlock } from '../../ledger/genesis.ts';
import { blockWork } from '../../consensus/pow.ts';
import { LightHeaders, RECENT_HEADERS } from '../../node/light/headers.ts';
import { seededRandom, testParams } from './fixtures.ts';
import { unminedChild } from './light-net.ts';

flushCompileCache(); // every run ends in SIGKILL, before Node would write it at exit

const [path, seedText] = process.argv.slice(2);
if (!path || !seedText || !/^\d+$/.test(seedText)) {
  process.stderr.write('usage: light-headers-writer.ts <path> <seed>\n');
  process.exit(2);
}
const rng = seededRandom(Number(seedText));
const say = (line: string) => writeSync(1, `${line}\n`);

const WRITER_PARAMS = testParams({ name: 'cairn-light-kill', timestamp: 1_600_000_000 });
const store = LightHeaders.open(path, genesisBlock(WRITER_PARAMS).header);
say(`open ${store.height} ${toHex(store.tip.header.hash)}`);

for (let round = 0; ; round++) {
  const staged = store.stage();
  // A branch forks within the headers kept whole, as header-fetch.ts follows one.
  const back = rng.int(3) === 0 ? Math.min(staged.height, 1 + rng.int(RECENT_HEADERS - 20)) : 0;
  const fork = staged.height - back;
  if (back > 0) staged.truncate(fork);
  const headers: BlockHeader[] = [];
  let parent = staged.tip.header;
  let work = staged.tip.totalWork;
  const works: bigint[] = [];
  for (let i = 0, n = back + 1 + rng.int(600); i < n; i++) {
    parent = unminedChild(parent, round);
    work += blockWork(parent.target);
    headers.push(parent);
    works.push(work);
  }
  // Appended in batches, as answers arrive.
  for (let i = 0; i < headers.length; i += 200) staged.append(headers.slice(i, i + 200), works.slice(i, i + 200));
  if (rng.int(4) === 0) {
    store.rollback();
    continue;
  }
  say(`begin ${fork} ${headers.map((h) => toHex(h.hash)).join(',')}`);
  store.commit();
  say('done');
}
