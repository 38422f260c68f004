/**
 * The commands that inspect a node, run in-process on command lines made of their own flags and
 * of values right and wrong, against a live node with a short chain: each prints its answer or
 * fails with an error the CLI prints as one line of ours, never one it reports as a bug in cairn
 * (cli/output.ts: a TypeError and its kin). Commands that change things (send, keys, node, init,
 * genesis, snapshot, stop…) are left out: random flags would start nodes or write files.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { toHex } from '../ledger/bytes.ts';
import { encodeAddress } from '../ledger/keys.ts';
import { genesisJson, parseGenesis } from '../ledger/genesis.ts';
import { createOut, failureText } from '../cli/output.ts';
import { CLI_COMMANDS } from './helpers/cli-commands.ts';
import { RPC_ENDPOINT_FILE, type RpcEndpointFile } from '../node/rpc-types.ts';
import { FUNDED_KEYS, tempDir, testKey, transfer } from './helpers/fixtures.ts';
import { FUZZ_SEED as SEED, fuzzRuns as runs } from './helpers/fuzz.ts';
import { mineOn, networkParams, startNode, stopAll, type TestNode } from './helpers/network.ts';


const READ_ONLY = ['status', 'account', 'tx', 'block', 'blocks', 'tips', 'peers', 'mempool', 'proof', 'verify', 'help rpc'];
const COMMANDS = Object.fromEntries(READ_ONLY.map((name) => [name, CLI_COMMANDS[name]!]));

describe('cairn commands on fuzzed command lines', function () {
  this.timeout(120_000);
  const params = networkParams();
  const [alice, bob] = FUNDED_KEYS as [(typeof FUNDED_KEYS)[0], (typeof FUNDED_KEYS)[0]];
  const dir = tempDir('cairn-cli-fuzz-');
  let t: TestNode;
  let endpoint: RpcEndpointFile;
  const values: string[] = [];

  before(async () => {
    t = await startNode(params, [], { verifyThreads: 1, rpc: { port: 0 } });
    endpoint = JSON.parse(readFileSync(join(t.config.datadir, RPC_ENDPOINT_FILE), 'utf8')) as RpcEndpointFile;
    const confirmed = transfer(alice, bob.address, 1000n, 0n, 5n);
    await t.node.submitTransaction(confirmed);
    const blocks = await mineOn(t, 3);
    const pending = transfer(bob, testKey(40).address, 7n, 0n, 3n);
    await t.node.submitTransaction(pending);
    values.push(
      ...blocks.map((b) => toHex(b.header.hash)),
      confirmed.idHex,
      pending.idHex,
      ...[alice.address, bob.address, testKey(41).address].map(encodeAddress),
      t.config.datadir,
      dir.path,
      join(dir.path, 'none'),
      '/dev/null',
      join(t.config.datadir, RPC_ENDPOINT_FILE),
    );
  });
  after(async () => {
    await stopAll([t]);
    dir.remove();
  });

  it('each command answers or fails with a line of ours, never as a bug in cairn', async () => {
    const flag = fc.constantFrom('--json', '--last', '--block', '--since', '--light', '--datadir', '--help', '--', '-', '--bogus', '--last=', '--json=1', '-x', '--rpc', '--rpc-token');
    const value = fc.oneof(
      fc.constantFrom('0', '1', '2', '3', '4', '-1', '1e3', '1.5', '4294967296', '99999999999999999999', 'latest', 'account', 'tx', 'cairn1', '0x00', '', ' ', 'http://127.0.0.1:1', 'not a url'),
      fc.constantFrom(0).chain(() => fc.constantFrom(...values)),
      fc.string({ maxLength: 12 }),
    );
    const arbLine = fc.tuple(fc.constantFrom(...Object.keys(COMMANDS)), fc.array(fc.oneof(flag, value), { maxLength: 6 }));
    const lines = fc.sample(arbLine, { seed: SEED, numRuns: runs(400) });
    // Proofs go to stdout whole (a file for `cairn verify`): kept out of the test's output.
    const write = process.stdout.write.bind(process.stdout);
    const outcomes = { answered: 0, refused: 0 };
    try {
      process.stdout.write = (() => true) as typeof process.stdout.write;
      for (const [name, args] of lines) {
        const argv = ['--rpc', endpoint.url, '--rpc-token', endpoint.token, ...args];
        try {
          await COMMANDS[name]!(argv, createOut(argv.includes('--json'), () => {}));
          outcomes.answered++;
        } catch (err) {
          outcomes.refused++;
          const text = failureText(err, false, '');
          assert.doesNotMatch(text, /internal error/, `cairn ${name} ${args.map((a) => JSON.stringify(a)).join(' ')}: ${text}`);
        }
      }
    } finally {
      process.stdout.write = write;
    }
    if (process.env.CAIRN_FUZZ_SCALE) console.log(`      ${JSON.stringify(outcomes)}`);
    assert.ok(outcomes.answered > 20 && outcomes.refused > 20, JSON.stringify(outcomes));
  });

  it('cairn genesis new, on fuzzed values of every option: a genesis file a node reads back as written, or a line of ours', async () => {
    const junk = fc.oneof(fc.constantFrom('-1', '1.5', '1e3', '0x10', '', ' ', 'CRN', '4294967296', '9007199254740993'), fc.string({ maxLength: 10 }));
    const whole = fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: 20 }).map(String) }, fc.constantFrom('60', '600', '86400', '86401', '4294967295', '281474976710656'), fc.nat().map(String), junk);
    const amount = fc.oneof(fc.bigInt({ min: 0n, max: 10n ** 22n }).map(String), fc.constantFrom('1000CRN', '1.5CRN', '0.000000001CRN', '99999999999CRN'), junk);
    const options: Record<string, fc.Arbitrary<string>> = {
      '--alloc': fc.tuple(fc.constantFrom(alice.address, bob.address), amount).map(([a, v]) => `${encodeAddress(a)}=${v}`),
      '--chain-id': whole,
      '--timestamp': fc.oneof(whole, fc.constantFrom(String(Math.floor(Date.now() / 1000)), String(Date.now()))),
      '--target': fc.oneof(fc.bigInt({ min: 0n, max: (1n << 260n) }).map((t) => `0x${t.toString(16)}`), fc.constantFrom('0x', `0x${'F'.repeat(64)}`, 'ff'), junk),
      '--block-time': whole,
      '--half-life': whole,
      '--reward': amount,
      '--unit': fc.oneof(fc.constantFrom('CRN', 'btc', 'ABCDEFGH', 'ABCDEFGHI', 'A-B'), junk),
      '--decimals': whole,
      '--max-block-bytes': whole,
      '--max-block-txs': whole,
    };
    const pair = fc.constantFrom(...Object.keys(options)).chain((o) => options[o]!.map((v) => [o, v] as const));
    const lines = fc.sample(fc.uniqueArray(pair, { maxLength: 4, selector: ([o]) => o }), { seed: SEED, numRuns: runs(300) });
    const outcomes = { written: 0, refused: 0 };
    const stderr = process.stderr.write.bind(process.stderr);
    try {
      process.stderr.write = (() => true) as typeof process.stderr.write;
      for (const pairs of lines) {
        const argv = ['new', '--name', 'fuzz-net', ...pairs.flat()];
        let written = '';
        try {
          await CLI_COMMANDS['genesis new']!(argv.slice(1), createOut(false, (text) => void (written += text)));
        } catch (err) {
          outcomes.refused++;
          assert.doesNotMatch(failureText(err, false, ''), /internal error/, `cairn genesis ${argv.map((a) => JSON.stringify(a)).join(' ')}`);
          continue;
        }
        outcomes.written++;
        assert.equal(genesisJson(parseGenesis(written)), written, `cairn genesis ${argv.join(' ')} wrote a file read back otherwise`);
      }
    } finally {
      process.stderr.write = stderr;
    }
    if (process.env.CAIRN_FUZZ_SCALE) console.log(`      ${JSON.stringify(outcomes)}`);
    assert.ok(outcomes.written > 20 && outcomes.refused > 20, JSON.stringify(outcomes));
  });
});
