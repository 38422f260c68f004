/**
 * Child process of test/crash-safety.test.ts: writes blocks to a ChainDB until it is killed.
 *
 *   node test/helpers/crash-writer.ts <datadir> <seed>
 *
 * Every line on stdout is written synchronously (fs.writeSync on the pipe), so a line the parent
 * reads is a fact about the store even when SIGKILL arrives right after it:
 *
 *   open <height> <hash> <from>          the tip this process found on opening the store, and
 *                                        what its tree's top came from (checkpoint or scan)
 *   begin connect <height> <hash>        about to commit; the tip it would become
 *   begin disconnect <height> <hash>     about to commit; the tip it would become
 *   done <height> <hash>                 the operation above is committed; the tip now
 *
 * Between a "begin" and its "done" the store may be at either tip, never anywhere else.
 */
import { TipHarness } from './tip.ts';
import { writeSync } from 'node:fs';
import { toHex } from '../../ledger/bytes.ts';
import type { Block } from '../../ledger/block.ts';
import { ChainDB } from '../../ledger/chaindb.ts';
import type { SignatureChecker } from '../../ledger/state.ts';
import type { Transaction } from '../../ledger/transaction.ts';
import { FUNDED_KEYS, childBlock, seededRandom, testParams, transfer } from './fixtures.ts';
import { deepPairs, randomAddresses } from './deep-paths.ts';
import { flushCompileCache } from 'node:module';

// Every run ends in SIGKILL, which leaves no time to write the code cache that NODE_COMPILE_CACHE
// asks for (Node writes it at exit): written now, the next of the test's 40 runs starts from it.
flushCompileCache();

const [datadir, seedText] = process.argv.slice(2);
if (!datadir || !seedText || !/^\d+$/.test(seedText)) {
  process.stderr.write('usage: crash-writer.ts <datadir> <seed>\n');
  process.exit(2);
}
const rng = seededRandom(Number(seedText));

function say(line: string): void {
  writeSync(1, `${line}\n`);
}

// This process signed every transaction itself a moment earlier. Verifying them again (~3 ms each)
// would fill most of each loop with crypto, where a kill has nothing to break; signatures are not
// what this test is about.
const ownSignatures: SignatureChecker = { async checkBlockSignatures() {} };
const DEEP = deepPairs(randomAddresses(41, 6000)).flat().map((a) => Buffer.from(a, 'hex'));
const db = await ChainDB.open(datadir, testParams());
const h = await TipHarness.open(db);
// Disconnecting only above this height keeps every tip after the first "done" above the tip found
// on opening, so each run of this process provably extends the chain.
const floor = h.tip.height + 2;
say(`open ${h.tip.height} ${toHex(h.tip.hash)} ${db.topFrom}`);

async function buildBlock(): Promise<Block> {
  const nonces = new Map<number, bigint>();
  const txs: Transaction[] = [];
  const count = 3 + rng.int(6);
  for (let i = 0; i < count; i++) {
    const sender = rng.int(FUNDED_KEYS.length);
    const key = FUNDED_KEYS[sender]!;
    const nonce = nonces.get(sender) ?? (await db.getAccount(key.address))?.nonce ?? 0n;
    nonces.set(sender, nonce + 1n);
    // Mostly fresh accounts, so disconnects must also delete accounts, not only restore them; a
    // third of them pairs whose paths leave the tree's top, so that kills land on writes of stored
    // inner nodes, the node cache and its prefetch too, not only on the top in memory.
    const roll = rng.int(12);
    const to = roll < 3 ? FUNDED_KEYS[rng.int(FUNDED_KEYS.length)]!.address : roll < 7 ? DEEP[rng.int(DEEP.length)]! : rng.bytes(20);
    txs.push(transfer(key, to, 1n + BigInt(rng.int(100)), nonce, 1n + BigInt(rng.int(3))));
  }
  return childBlock(h.tip, txs);
}

async function connect(block: Block): Promise<void> {
  say(`begin connect ${block.header.height} ${toHex(block.header.hash)}`);
  await h.connectBlock(block, ownSignatures);
  await db.flushed(); // connectBlock queues its batch; "done" means committed
  say(`done ${h.tip.height} ${toHex(h.tip.hash)}`);
}

async function disconnect(): Promise<Block> {
  const tip = await db.getBlock(h.tip.hash);
  if (!tip) throw new Error(`the tip ${toHex(h.tip.hash)} has no stored block`);
  say(`begin disconnect ${tip.header.height - 1} ${toHex(tip.header.prevHash)}`);
  const removed = await h.disconnectTip();
  await db.flushed();
  say(`done ${h.tip.height} ${toHex(h.tip.hash)}`);
  return removed;
}

for (;;) {
  await connect(await buildBlock());
  if (h.tip.height >= floor && rng.int(5) === 0) {
    const removed = await disconnect();
    // Either the same block again or a competitor at its height, as a one-block reorg would.
    await connect(rng.int(2) === 0 ? removed : await buildBlock());
  }
}
