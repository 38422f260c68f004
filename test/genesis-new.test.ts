/**
 * `cairn genesis new` (cli/cmd-genesis.ts): the devnet's rules by default, dated now, a chain id of
 * its own; every flag checked as a node checks genesis.json, a refusal naming the flag; an address
 * given twice refused rather than one of its amounts dropped.
 */
import assert from 'node:assert/strict';
import { UsageError } from '../cli/args.ts';
import { newGenesis } from '../cli/cmd-genesis.ts';
import { genesisJson, parseGenesis, sameGenesis } from '../ledger/genesis.ts';
import { encodeAddress } from '../ledger/keys.ts';
import { tempDir, testKey } from './helpers/fixtures.ts';
import { REPO, runCli } from './helpers/cli.ts';
import { futureGenesisWarning, readGenesisText, sharedChainIdWarning } from '../cli/datadir.ts';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const NOW = 1_900_000_000;
const ADDR_1 = encodeAddress(testKey(1).address);
const ADDR_2 = encodeAddress(testKey(2).address);
const make = (values: Record<string, unknown>) => newGenesis(values, NOW, () => 77);

function refused(values: Record<string, unknown>, message: RegExp): void {
  assert.throws(() => make(values), (err: unknown) => err instanceof UsageError && message.test(err.message));
}

describe('cairn genesis new', () => {
  it('defaults to the devnet\'s rules, dated now, with the chain id it is given', () => {
    const p = make({ name: 'mine-1', alloc: [`${ADDR_1}=1000CRN`, `${ADDR_2}=5`] });
    assert.equal(p.name, 'mine-1');
    assert.equal(p.chainId, 77);
    assert.equal(p.timestamp, NOW);
    assert.equal(p.target, (1n << 234n) - 1n);
    assert.deepEqual([p.blockTime, p.asertHalfLife, p.reward, p.unit, p.decimals, p.maxBlockBytes, p.maxBlockTxs], [5, 120, 5_000_000_000n, 'CRN', 8, 1_048_576, 5000]);
    assert.deepEqual(new Map(p.alloc.map((a) => [encodeAddress(a.address), a.balance])), new Map([[ADDR_1, 100_000_000_000n], [ADDR_2, 5n]]));
    assert.ok(sameGenesis(parseGenesis(genesisJson(p)), p), 'the file it prints reads back as the same network');
    assert.match(genesisJson(p), /"target": "0x000003f{58}"/, 'the target with its leading zeros: how hard it is, at a glance');
  });

  it('takes every rule from its flag, coins in the network\'s own unit', () => {
    const p = make({ name: 'x', 'chain-id': '9', timestamp: '1700000000', target: '0x00FF', 'block-time': '60', reward: '2.5ABC', unit: 'abc', decimals: '2', 'max-block-bytes': '200000', 'max-block-txs': '10', alloc: [`${ADDR_1}=3ABC`] });
    assert.deepEqual([p.chainId, p.timestamp, p.target, p.blockTime, p.asertHalfLife, p.reward, p.unit, p.decimals, p.maxBlockBytes, p.maxBlockTxs], [9, 1_700_000_000, 255n, 60, 1440, 250n, 'ABC', 2, 200_000, 10]);
    assert.equal(p.alloc[0]!.balance, 300n);
  });

  it('refuses an address given twice, naming it, rather than keep one of its amounts', () => {
    refused({ name: 'x', alloc: [`${ADDR_1}=1`, `${ADDR_2}=1`, `${ADDR_1}=2`] }, new RegExp(`--alloc gives ${ADDR_1} twice`));
  });

  it('refuses a --timestamp later than a block may be ahead of the clock (in milliseconds, say), saying so; one within that, or past, is taken', () => {
    const ms = NOW * 1000 + 123;
    assert.throws(() => make({ name: 'x', timestamp: String(ms) }), (err: unknown) => err instanceof UsageError && err.message === `--timestamp ${ms} is ${new Date(ms * 1000).toISOString()}, ${ms - NOW} s ahead of now, and no block can be mined before it: it is in milliseconds; in seconds it is ${NOW} (seconds since 1970; leave it out for now)`);
    const nextYear = NOW + 365 * 86_400;
    assert.throws(() => make({ name: 'x', timestamp: String(nextYear) }), (err: unknown) => err instanceof UsageError && err.message === `--timestamp ${nextYear} is ${new Date(nextYear * 1000).toISOString()}, ${365 * 86_400} s ahead of now, and no block can be mined before it (seconds since 1970; leave it out for now)`);
    // The devnet's rules: 5 s blocks, a minute's drift.
    assert.equal(make({ name: 'x', timestamp: String(NOW + 60) }).timestamp, NOW + 60);
    refused({ name: 'x', timestamp: String(NOW + 61) }, /^--timestamp \d+ is .*, 61 s ahead of now/);
    assert.equal(make({ name: 'x', timestamp: '1600000000' }).timestamp, 1_600_000_000);
  });

  it('refuses what no node would accept, naming the flag', () => {
    refused({}, /--name is required/);
    refused({ name: 'two words' }, /--name must be/);
    refused({ name: 'x', target: '0x0' }, /--target must be non-zero/);
    refused({ name: 'x', target: 'ff' }, /--target must be/);
    refused({ name: 'x', unit: 'C-N' }, /--unit must be/);
    refused({ name: 'x', 'block-time': '0' }, /--block-time must be a whole number from 1/);
    refused({ name: 'x', 'max-block-bytes': '10' }, /--max-block-bytes must be an integer from 181/);
    refused({ name: 'x', decimals: '19' }, /--decimals must be a whole number from 0 to 18/);
    refused({ name: 'x', alloc: [ADDR_1] }, /--alloc takes ADDRESS=AMOUNT/);
    refused({ name: 'x', alloc: ['cairn1nope=5'] }, /invalid --alloc address "cairn1nope"/);
    refused({ name: 'x', alloc: [`${ADDR_1}=1.5XYZ`] }, /this network's unit is CRN/);
    refused({ name: 'x', alloc: [`${ADDR_1}=9000000000000000000`, `${ADDR_2}=9000000000000000000`] }, /the sum of --alloc exceeds MAX_AMOUNT/);
  });

  it('a network that keeps the devnet\'s chain id (a devnet file renamed) is warned of at init and at every start; the devnet and a network of its own are not', async () => {
    // From the genesis review: a copy of the devnet's genesis.json with only its name changed kept
    // chain id 1337, so a transaction signed for one network was valid on the other.
    const devnet = parseGenesis(readFileSync(join(REPO, 'genesis.json'), 'utf8'));
    assert.equal(await sharedChainIdWarning(devnet), undefined);
    assert.equal(await sharedChainIdWarning(make({ name: 'own' })), undefined);
    assert.match((await sharedChainIdWarning({ ...devnet, name: 'renamed' }))!, /^the network "renamed" has the devnet's chain id 1337: .*cairn genesis new/);
    const dir = tempDir('cairn-genesis-warn-');
    try {
      const file = join(dir.path, 'renamed.json');
      writeFileSync(file, readFileSync(join(REPO, 'genesis.json'), 'utf8').replace(/"name": "[^"]*"/, '"name": "renamed"'));
      const init = await runCli(['init', '--datadir', join(dir.path, 'data'), '--genesis', file]);
      assert.equal(init.code, 0, init.stderr);
      assert.match(init.stderr, /^cairn: warning: the network "renamed" has the devnet's chain id 1337/);
      const plain = await runCli(['init', '--datadir', join(dir.path, 'devnet')]);
      assert.equal(plain.stderr, '');
    } finally {
      dir.remove();
    }
  });

  it('a genesis timestamp in milliseconds (a hand-written Date.now()) is warned of at init, with the seconds it meant; one within a day, or past, is not', async () => {
    // Valid by the genesis rules (up to 2^48), and no block could be mined for 56,000 years: the node ran, its miner waiting.
    const ms = make({ name: 'ms-net', 'chain-id': '77' });
    const msParams = { ...ms, timestamp: NOW * 1000 };
    assert.equal(futureGenesisWarning(msParams, NOW), `the network "ms-net" starts at +062178-08-08T17:46:40Z (its genesis timestamp): no block can be mined before it; its timestamp ${NOW * 1000} is in milliseconds: in seconds it is ${NOW}`);
    assert.equal(futureGenesisWarning({ ...ms, timestamp: NOW + 30 * 86_400 }, NOW), 'the network "ms-net" starts at 2030-04-16T17:46:40Z (its genesis timestamp): no block can be mined before it');
    assert.match(futureGenesisWarning({ ...ms, timestamp: 2 ** 48 }, NOW)!, /starts after the year 275760 /);
    for (const timestamp of [NOW - 1, NOW + 3600, NOW - 10 * 365 * 86_400]) assert.equal(futureGenesisWarning({ ...ms, timestamp }, NOW), undefined, String(timestamp));
    const dir = tempDir('cairn-genesis-ms-');
    try {
      const file = join(dir.path, 'ms.json');
      writeFileSync(file, genesisJson({ ...ms, timestamp: Date.now() }));
      const init = await runCli(['init', '--datadir', join(dir.path, 'data'), '--genesis', file]);
      assert.equal(init.code, 0, init.stderr);
      assert.match(init.stderr, /^cairn: warning: the network "ms-net" starts at \+\d{6}-.* is in milliseconds: in seconds it is \d{10}\n$/);
    } finally {
      dir.remove();
    }
  });

  it('a genesis from a pipe (/dev/stdin fed by one, <(…)) is read, up to the most a genesis file may have: more is refused once the pipe gave it', async () => {
    // From the carried list: init, node and verify refused any pipe, as "not a regular file", for
    // fear of reading a device whole; a pipe has no size to check first, so its read is capped.
    const dir = tempDir('cairn-genesis-pipe-');
    const writers: ChildProcess[] = [];
    try {
      const text = genesisJson(parseGenesis(readFileSync(join(REPO, 'genesis.json'), 'utf8')));
      const init = await runCli(['init', '--datadir', join(dir.path, 'piped'), '--genesis', '/dev/stdin', '--json'], { input: text, inputThroughPipe: true });
      assert.equal(init.code, 0, init.stderr);
      assert.equal(readFileSync(join(dir.path, 'piped', 'genesis.json'), 'utf8'), text, 'the copy is what the pipe gave');
      // A pipe that never ends (`--genesis <(yes)`), with a cap a test can reach: refused past it.
      const fifo = join(dir.path, 'fifo');
      assert.equal(spawnSync('mkfifo', [fifo]).status, 0, 'mkfifo');
      const writer = spawn('sh', ['-c', 'exec yes > "$0"', fifo], { stdio: 'ignore' });
      writers.push(writer);
      const gone = new Promise((r) => writer.once('close', r));
      await assert.rejects(readGenesisText(fifo, 100_000), { message: `${fifo} is not a genesis file Cairn can read: the pipe gave more bytes than the 100000 a genesis file may have (the longest text this runtime holds)` });
      await gone; // its next write, with no reader, ends it (SIGPIPE): the next reader must not meet it
      // One that ends within the cap is its text, whole.
      const short = spawn('sh', ['-c', 'printf "%s" "$1" > "$0"', fifo, text], { stdio: 'ignore' });
      writers.push(short);
      assert.equal(await readGenesisText(fifo, text.length), text);
    } finally {
      for (const w of writers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
      dir.remove();
    }
  });

  it('a genesis that is no regular file, or larger than any text the runtime holds, is refused before it is read, and no datadir made', async () => {
    // From the genesis review: --genesis /dev/zero read for 5 s into 770 MB, then "Invalid string length".
    const dir = tempDir('cairn-genesis-size-');
    try {
      const huge = join(dir.path, 'huge.json');
      writeFileSync(huge, '');
      truncateSync(huge, 2 ** 29); // sparse: nothing written
      const [device, large] = await Promise.all([
        runCli(['init', '--datadir', join(dir.path, 'a'), '--genesis', '/dev/zero']),
        runCli(['init', '--datadir', join(dir.path, 'b'), '--genesis', huge]),
      ]);
      assert.equal(device.code, 1);
      assert.match(device.stderr, /^cairn: \/dev\/zero is not a genesis file: not a regular file/);
      assert.equal(large.code, 1);
      assert.match(large.stderr, /is not a genesis file Cairn can read: 536870912 bytes, over the 536870888/);
      assert.equal(existsSync(join(dir.path, 'a')) || existsSync(join(dir.path, 'b')), false, 'no datadir made');
    } finally {
      dir.remove();
    }
  });
});
