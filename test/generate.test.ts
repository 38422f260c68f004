/**
 * The chain generator (consensus/generate.ts, `cairn generate`): it writes many blocks per batch
 * without the import queue, so what it writes is proved here to be exactly what importing the
 * same blocks one by one through Chain.processBlock writes, byte for byte.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { ChainDB } from '../ledger/chaindb.ts';
import { auditChainDB } from '../ledger/audit.ts';
import { toHex } from '../ledger/bytes.ts';
import { MemoryDisk } from '../ledger/kv-memory.ts';
import { parseGenesis, genesisHashHex, genesisJson } from '../ledger/genesis.ts';
import { inlineSignatureChecker } from '../ledger/state.ts';
import { Chain } from '../consensus/chain.ts';
import { generateChain, generatorGenesis, generatorKey, generatorSenders } from '../consensus/generate.ts';
import { MAX_GENERATED_ACCOUNTS } from '../cli/cmd-generate.ts';
import { MAX_GENESIS_BYTES } from '../cli/datadir.ts';
import { tempDir, testKey } from './helpers/fixtures.ts';
import { asParent, mineChild, stateRootOnTip } from './helpers/mining.ts';

const CAIRN = fileURLToPath(new URL('../cli/cairn.mjs', import.meta.url));

describe('the chain generator', function () {
  this.timeout(120_000);

  it('writes exactly what importing its blocks through Chain.processBlock writes', async () => {
    const now = 1_800_000_000;
    const params = generatorGenesis({ blocks: 60, txsPerBlock: 2, accounts: 5, now });
    const generated = new MemoryDisk();
    const db = await ChainDB.open(generated.open(), params);
    const tip = await generateChain(db, { blocks: 60, txsPerBlock: 2, senders: generatorSenders(2), miner: generatorKey(0).address, now });
    assert.equal(tip.height, 60);

    // The same blocks, read back by height, through the whole import road with every signature checked.
    const imported = new MemoryDisk();
    const db2 = await ChainDB.open(imported.open(), params);
    const chain = await Chain.open(db2, { clock: () => now, signatures: inlineSignatureChecker, reorgDepth: 20 });
    for (let h = 1; h <= 60; h++) assert.equal(await chain.processBlock((await db.getBlockAtHeight(h))!), 'connected', `block ${h}`);
    await db2.flushed();
    const dump = (disk: MemoryDisk) => [...disk.entries].map(([k, v]) => `${k} ${toHex(v.value)}`).sort();
    assert.deepEqual(dump(generated), dump(imported));
    const report = await auditChainDB(db, { checkSignatures: true });
    assert.equal(report.height, 60);
    await db.close();
    await db2.close();
  });

  it('refuses a chain that would end in the future', async () => {
    const now = 1_800_000_000;
    const params = generatorGenesis({ blocks: 10, now });
    const db = await ChainDB.open(new MemoryDisk().open(), params);
    await assert.rejects(generateChain(db, { blocks: 100, miner: generatorKey(0).address, now }), /in the future/);
    assert.equal((await db.storedTip()).height, 0, 'and writes nothing');
    await db.close();
  });

  it('its genesis file reads back as the same network', () => {
    const params = generatorGenesis({ blocks: 10, txsPerBlock: 2, accounts: 3, now: 1_800_000_000 });
    assert.equal(genesisHashHex(parseGenesis(genesisJson(params))), genesisHashHex(params));
  });

  it('--accounts is capped below where the genesis file would no longer fit what a node reads', () => {
    // Past the first few, every funded account is one more line of the same length.
    const bytes = (accounts: number) => genesisJson(generatorGenesis({ blocks: 10, accounts, now: 1_800_000_000 })).length;
    const perAccount = (bytes(2000) - bytes(1000)) / 1000;
    assert.ok(Number.isInteger(perAccount) && perAccount > 0);
    const atCap = bytes(1000) + (MAX_GENERATED_ACCOUNTS - 1000) * perAccount;
    assert.ok(atCap <= MAX_GENESIS_BYTES, `${MAX_GENERATED_ACCOUNTS} accounts make ${atCap} bytes`);
  });

  it('cairn generate refuses more accounts than a node opens, before making the datadir', async () => {
    const dir = tempDir();
    try {
      const datadir = join(dir.path, 'gen');
      await assert.rejects(
        promisify(execFile)(process.execPath, [CAIRN, 'generate', '--blocks', '1', '--accounts', String(MAX_GENERATED_ACCOUNTS + 1), '--datadir', datadir]),
        (err: { code: number; stderr: string }) => err.code === 2 && /--accounts must be a whole number from 0 to 1000000/.test(err.stderr),
      );
      assert.equal(existsSync(datadir), false);
    } finally {
      dir.remove();
    }
  });

  it('cairn generate makes a datadir a node opens at its tip and builds on', async () => {
    const dir = tempDir();
    try {
      const datadir = join(dir.path, 'gen');
      const { stdout } = await promisify(execFile)(process.execPath, [CAIRN, 'generate', '--blocks', '3000', '--datadir', datadir, '--json'], { timeout: 60_000 });
      const out = JSON.parse(stdout) as { height: number; blocksPerSecond: number };
      assert.equal(out.height, 3000);
      const params = parseGenesis(readFileSync(join(datadir, 'genesis.json'), 'utf8'));
      const db = await ChainDB.open(join(datadir, 'chain'), params);
      try {
        const chain = await Chain.open(db, { clock: () => Math.floor(Date.now() / 1000) });
        assert.equal(chain.tip.height, 3000);
        const miner = testKey(99).address;
        const stateRoot = await stateRootOnTip(chain, miner);
        const next = mineChild(params, { ...asParent((await db.getBlockAtHeight(3000))!), anchorTimestamp: chain.tip.anchorTimestamp }, [], { miner, stateRoot });
        assert.equal(await chain.processBlock(next), 'connected');
        assert.equal((await auditChainDB(db)).height, 3001);
      } finally {
        await db.close();
      }
      await assert.rejects(promisify(execFile)(process.execPath, [CAIRN, 'generate', '--blocks', '10', '--datadir', datadir]), /not empty/);
    } finally {
      dir.remove();
    }
  });
});
