import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { genesisHashHex, parseGenesis } from '../ledger/genesis.ts';
import { addressOf, decodeAddress, encodeAddress, publicKeyOf } from '../ledger/keys.ts';
import { fromHex } from '../ledger/bytes.ts';
import { tempDir, testKey } from './helpers/fixtures.ts';
import {
  CAIRN_BIN,
  DEVNET_ADDRESS,
  DEVNET_PRIVATE_KEY,
  REPO,
  closedPort,
  cliJson,
  killAll,
  runCli,
  spawnCli,
  stopChild,
  waitFor,
  writeTestGenesis,
  type CliChild,
  type CliResult,
} from './helpers/cli.ts';

/**
 * A failure as the contract wants it: non-zero status, nothing on stdout, exactly one line on
 * stderr that starts with "cairn:", says what went wrong, and carries no stack trace.
 */
function assertOneLineError(r: CliResult, message: RegExp, code?: number): void {
  const context = `status ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
  assert.notEqual(r.code, 0, context);
  assert.equal(r.signal, null, context);
  if (code !== undefined) assert.equal(r.code, code, context);
  assert.equal(r.stdout, '', context);
  assert.ok(r.stderr.endsWith('\n'), context);
  const lines = r.stderr.slice(0, -1).split('\n');
  assert.equal(lines.length, 1, context);
  assert.doesNotMatch(r.stderr, /^\s+at /m, context);
  assert.match(lines[0]!, /^cairn: /, context);
  assert.match(lines[0]!, message, context);
}

function assertOk(r: CliResult): void {
  assert.equal(r.code, 0, `status ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

/** Runs `f` over `items` two at a time: every `cairn` process is CPU-bound while it starts. */
async function inPairs<T, R>(items: readonly T[], f: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += 2) out.push(...(await Promise.all(items.slice(i, i + 2).map(f))));
  return out;
}

const HEX64 = /^[0-9a-f]{64}$/;
const DECIMAL = /^(0|[1-9][0-9]*)$/;
const DEVNET_BALANCE = 1_000_000_000_000_000_000n;

/** Every command that must answer --help (the keys subcommands share one help text). */
const HELP_COMMANDS: readonly (readonly string[])[] = [
  [],
  ['init'],
  ['node'],
  ['devnet'],
  ['keys'],
  ['keys', 'export'],
  ['send'],
  ['status'],
  ['account'],
  ['tx'],
  ['block'],
  ['blocks'],
  ['tips'],
  ['stop'],
  ['peers'],
  ['mempool'],
  ['generate'],
  ['snapshot'],
  ['light'],
  ['proof'],
  ['verify'],
  ['help', 'rpc'],
];

describe('cairn command, through real processes', function () {
  this.timeout(30_000);
  const dir = tempDir('cairn-cli-');
  const datadir = join(dir.path, 'data');
  const keystore = join(dir.path, 'keys');
  const passwordFile = join(dir.path, 'password');
  const wrongPasswordFile = join(dir.path, 'wrong-password');
  const keyFile = join(dir.path, 'devnet.hex');
  const envPassword = 'correct horse battery staple';
  const coinbase = encodeAddress(testKey(4242).address);
  let node: CliChild | undefined;
  let newAddress = '';

  before(() => {
    writeFileSync(passwordFile, 'hunter2 with spaces\n', { mode: 0o600 });
    writeFileSync(wrongPasswordFile, 'hunter3\n', { mode: 0o600 });
    writeFileSync(keyFile, DEVNET_PRIVATE_KEY + '\n');
  });
  // A command a failed test left running is killed by pid here; the node is stopped by the last
  // test, and killed in `after` if that test did not get to run.
  afterEach(() => killAll([node]));
  after(async () => {
    if (node) await stopChild(node, 5_000);
    await killAll();
    dir.remove();
  });

  describe('help', () => {
    it('--help on every command exits 0 with usage and an Example section', async () => {
      const results = await inPairs(HELP_COMMANDS, (c) => runCli([...c, '--help']));
      results.forEach((r, i) => {
        const what = `cairn ${HELP_COMMANDS[i]!.join(' ')} --help`;
        assert.equal(r.code, 0, `${what}: ${r.stderr}`);
        assert.equal(r.stderr, '', what);
        assert.match(r.stdout, /^Usage: cairn/, what);
        assert.match(r.stdout, /^Examples?[:,]/m, what);
        assert.match(r.stdout, /^ {2}cairn /m, `${what}: an example command line`);
      });
    });

    it('help rpc: --help answers without a node; an unknown option points to help rpc\'s own help', async () => {
      const empty = join(dir.path, 'no-node');
      mkdirSync(empty, { recursive: true });
      const [help, bogus] = await Promise.all([runCli(['help', 'rpc', '--help', '--datadir', empty]), runCli(['help', 'rpc', '--bogus'])]);
      assertOk(help);
      assert.match(help.stdout, /^Usage: cairn help rpc /);
      assertOneLineError(bogus, /^cairn: unknown option --bogus \(see cairn help rpc --help\)$/, 2);
    });

    it('the bin shim cli/cairn.mjs runs the same command; no command at all is a usage error', async () => {
      const [shim, bare] = await Promise.all([runCli(['--help'], { script: CAIRN_BIN }), runCli([])]);
      assertOk(shim);
      assert.match(shim.stdout, /^Usage: cairn COMMAND/);
      assert.match(shim.stdout, /^ {2}status \| account ADDRESS/m);
      assert.equal(shim.stderr, '');
      assert.equal(bare.code, 2);
      assert.equal(bare.stdout, shim.stdout);
    });
  });

  describe('the build (npm run build: what the cairn launcher runs once it is newer than the sources)', () => {
    it('compiles to JavaScript that runs: the help, and a datadir made from the bundled genesis', async function () {
      this.timeout(60_000);
      const out = join(dir.path, 'build');
      const tsc = spawnSync(process.execPath, [join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(REPO, 'tsconfig.build.json'), '--outDir', out], { encoding: 'utf8' });
      assert.equal(tsc.status, 0, tsc.stdout + tsc.stderr);
      copyFileSync(join(REPO, 'genesis.json'), join(out, 'genesis.json'));
      symlinkSync(join(REPO, 'node_modules'), join(out, 'node_modules')); // where the packages resolve from
      assert.ok(!existsSync(join(out, 'cli', 'main.ts')) && existsSync(join(out, 'node', 'pool-worker.js')));
      const [help, init] = await Promise.all([
        runCli(['--help'], { script: join(out, 'cli', 'main.js') }),
        runCli(['init', '--datadir', join(dir.path, 'built-init'), '--json'], { script: join(out, 'cli', 'main.js') }),
      ]);
      assertOk(help);
      assert.match(help.stdout, /^Usage: cairn COMMAND/);
      assertOk(init);
      assert.equal(JSON.parse(init.stdout).network, 'cairn-devnet-1');
    });
  });

  describe('errors without a node', () => {
    it('an unknown command and an unknown flag are one-line usage errors (status 2)', async () => {
      const [command, flag] = await Promise.all([runCli(['frobnicate']), runCli(['status', '--bogus'])]);
      assertOneLineError(command, /unknown command "frobnicate"/, 2);
      assertOneLineError(flag, /--bogus/, 2);
    });

    it('a node that is not running: an empty datadir, a closed port', async () => {
      const empty = join(dir.path, 'empty');
      mkdirSync(empty);
      const port = await closedPort();
      const [onDatadir, onPort] = await Promise.all([
        runCli(['status', '--datadir', empty]),
        runCli(['status', '--rpc', `http://127.0.0.1:${port}/`, '--rpc-token', 'x']),
      ]);
      assertOneLineError(onDatadir, /no node is running on .*empty/, 1);
      assertOneLineError(onPort, new RegExp(`127\\.0\\.0\\.1:${port}.* not answering`), 1);
    });

    it('an unknown keys command and a malformed address are said once, each with one pointer to --help', async () => {
      const [keys, account] = await Promise.all([runCli(['keys', 'foo']), runCli(['account', 'foo'])]);
      assertOneLineError(keys, /^cairn: unknown keys command "foo": new, list, import or export \(see cairn keys --help\)$/, 2);
      assertOneLineError(account, /^cairn: invalid address "foo": [^"]*\(see cairn account --help\)$/, 2);
      assert.doesNotMatch(account.stderr, /invalid address.*invalid address/);
    });

    it('a node killed without removing its rpc.json: said to have ended, with its pid, not "not answering"', async () => {
      const stale = join(dir.path, 'stale');
      mkdirSync(stale);
      // A pid that has certainly ended: a process of ours that has exited.
      const ended = spawnSync(process.execPath, ['-e', ''], { encoding: 'utf8' }).pid;
      writeFileSync(join(stale, 'rpc.json'), JSON.stringify({ url: `http://127.0.0.1:${await closedPort()}/`, token: 'x', pid: ended }) + '\n');
      assertOneLineError(await runCli(['status', '--datadir', stale]), new RegExp(`^cairn: no node is running on .*stale: its rpc\\.json names pid ${ended}, which has ended without removing it \\(killed, or crashed: see its log\\); start it again with: cairn node --datadir .*stale$`), 1);
    });

    it('cairn stop where no node runs: on a datadir, says so and exits 0 (after a kill too); on none, exit 1 and no "start one"', async () => {
      // From a newcomer's walkthrough: a stop of a node that had already stopped exited 1 and
      // said to start one with cairn node, when what they asked for held.
      const stopped = join(dir.path, 'stopped');
      mkdirSync(stopped);
      writeFileSync(join(stopped, 'genesis.json'), '{}\n');
      const [text, json] = await Promise.all([runCli(['stop', '--datadir', stopped]), runCli(['stop', '--datadir', stopped, '--json'])]);
      assert.deepEqual([text.code, text.stdout, text.stderr], [0, `no node is running on ${stopped}: nothing to stop\n`, '']);
      assert.deepEqual([json.code, JSON.parse(json.stdout)], [0, { stopped: false, pid: null }]);
      // Killed: its rpc.json names a pid that has ended.
      const ended = spawnSync(process.execPath, ['-e', ''], { encoding: 'utf8' }).pid;
      writeFileSync(join(stopped, 'rpc.json'), JSON.stringify({ url: `http://127.0.0.1:${await closedPort()}/`, token: 'x', pid: ended }) + '\n');
      const killed = await runCli(['stop', '--datadir', stopped]);
      assert.deepEqual([killed.code, killed.stdout], [0, `no node is running on ${stopped}: nothing to stop (its last run, pid ${ended}, ended without a clean stop: killed, or crashed; see its log)\n`]);
      // No datadir there at all (a typo, ./data from another folder): the node meant may run elsewhere.
      const missing = join(dir.path, 'no-such-datadir');
      assertOneLineError(await runCli(['stop', '--datadir', missing]), new RegExp(`^cairn: nothing to stop: ${missing} is no datadir \\(no such directory\\); if the node runs on another, give that --datadir$`), 1);
    });

    it('a malformed address or transaction id is refused before any node is asked', async () => {
      const empty = join(dir.path, 'empty');
      const badChecksum = DEVNET_ADDRESS.slice(0, -1) + (DEVNET_ADDRESS.endsWith('z') ? 'q' : 'z');
      const [account, tx] = await Promise.all([runCli(['account', badChecksum, '--datadir', empty]), runCli(['tx', 'xyz', '--datadir', empty])]);
      assertOneLineError(account, /invalid address.*checksum/i, 2);
      assertOneLineError(tx, /64 lower-case hex/, 2);
    });
  });

  describe('keys', () => {
    it('imports the public devnet key from a file (--password-file) and refuses it twice', async () => {
      const imported = await cliJson(['keys', 'import', '--keystore', keystore, '--password-file', passwordFile, keyFile]);
      assert.deepEqual(imported, { address: DEVNET_ADDRESS });
      const again = await runCli(['keys', 'import', '--keystore', keystore, '--password-file', passwordFile, keyFile]);
      assertOneLineError(again, /already in the keystore/, 1);
    });

    it('makes a new key with the password from CAIRN_PASSWORD', async () => {
      const created = await cliJson<{ address: string }>(['keys', 'new', '--keystore', keystore], { env: { CAIRN_PASSWORD: envPassword } });
      assert.deepEqual(Object.keys(created), ['address']);
      assert.doesNotThrow(() => decodeAddress(created.address));
      newAddress = created.address;
    });

    it('lists both keys', async () => {
      const [listed, human] = await Promise.all([
        cliJson<{ address: string }[]>(['keys', 'list', '--keystore', keystore]),
        runCli(['keys', 'list', '--keystore', keystore]),
      ]);
      assert.deepEqual(listed.map((k) => k.address), [DEVNET_ADDRESS, newAddress].sort());
      assertOk(human);
      assert.deepEqual(human.stdout.trim().split('\n'), [DEVNET_ADDRESS, newAddress].sort());
    });

    it('exports the same keys back, each under its own password', async () => {
      const [devnet, fresh] = await Promise.all([
        runCli(['keys', 'export', '--keystore', keystore, '--password-file', passwordFile, DEVNET_ADDRESS]),
        cliJson<{ address: string; privateKey: string }>(['keys', 'export', '--keystore', keystore, newAddress], { env: { CAIRN_PASSWORD: envPassword } }),
      ]);
      assertOk(devnet);
      assert.equal(devnet.stdout, DEVNET_PRIVATE_KEY + '\n');
      assert.equal(fresh.address, newAddress);
      assert.match(fresh.privateKey, HEX64);
      assert.equal(encodeAddress(addressOf(publicKeyOf(fromHex(fresh.privateKey)))), newAddress);
    });

    it('cairn status and cairn stop given the keystore as --datadir: it holds no node\'s data, not "start one with cairn node" there', async () => {
      // cairn node refuses a folder of other things: the start it was sent to failed too.
      const [status, stop] = await Promise.all([runCli(['status', '--datadir', keystore]), runCli(['stop', '--datadir', keystore])]);
      // Its entries: the two keys, and the lock they were written under (cli/keystore-lock.ts).
      const said = new RegExp(`^cairn: ${keystore} holds no node's data \\(no genesis\\.json, no chain store, among its 3 entries\\): give --datadir the folder a node runs on \\(default \\./data\\)$`);
      assertOneLineError(status, said, 1);
      assertOneLineError(stop, said, 1);
    });

    it('a key file holds no private key in the clear, and only its owner may read it', () => {
      assert.equal(statSync(keystore).mode & 0o777, 0o700);
      const raw = Buffer.from(DEVNET_PRIVATE_KEY, 'hex');
      const file = join(keystore, `${DEVNET_ADDRESS}.json`);
      assert.equal(statSync(file).mode & 0o777, 0o600);
      const bytes = readFileSync(file);
      const text = bytes.toString('latin1');
      assert.ok(!text.toLowerCase().includes(DEVNET_PRIVATE_KEY), 'hex of the private key');
      assert.equal(bytes.indexOf(raw), -1, 'raw bytes of the private key');
      assert.ok(!text.includes(raw.toString('base64')) && !text.includes(raw.toString('base64url')), 'base64 of the private key');
      assert.ok(!text.includes('hunter2'), 'the password');
      const doc = JSON.parse(text) as { address: string; crypto: { ciphertext: string } };
      assert.equal(doc.address, DEVNET_ADDRESS);
    });

    it('a wrong password, a missing keystore, no password at all: one-line errors', async () => {
      const [wrong, missing, noPassword] = await Promise.all([
        runCli(['keys', 'export', '--keystore', keystore, '--password-file', wrongPasswordFile, DEVNET_ADDRESS]),
        runCli(['keys', 'list', '--keystore', join(dir.path, 'nope')]),
        runCli(['keys', 'export', '--keystore', keystore, DEVNET_ADDRESS]),
      ]);
      assertOneLineError(wrong, /wrong password/, 1);
      assert.doesNotMatch(wrong.stderr, /hunter/);
      assertOneLineError(missing, /no keystore at .*nope/, 1);
      assertOneLineError(noPassword, /no password/, 1);
    });
  });

  describe('a mining node', () => {
    let genesisFile = '';
    let rpc: { url: string; token: string; pid: number };
    let sent: { id: string; blockHeight: number } | undefined;

    /** Straight to the node's JSON-RPC, for checks that are not themselves about the CLI. */
    const post = (body: string | ReadableStream<Uint8Array>, headers: Record<string, string> = {}, init: RequestInit = {}) =>
      fetch(rpc.url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body, signal: AbortSignal.timeout(15_000), ...init });
    const auth = () => ({ authorization: `Bearer ${rpc.token}` });
    const request = (method: string, params: unknown, id = 1) => JSON.stringify({ jsonrpc: '2.0', id, method, params });
    const rpcResult = async <T>(method: string, params: unknown): Promise<T> => {
      const body = (await (await post(request(method, params), auth())).json()) as { result?: T; error?: { message: string } };
      if (body.error) throw new Error(body.error.message);
      return body.result as T;
    };

    before(async function () {
      this.timeout(60_000);
      genesisFile = writeTestGenesis(dir.path);
      const init = await cliJson(['init', '--datadir', datadir, '--genesis', genesisFile]);
      assert.deepEqual(init, { datadir, network: 'cairn-cli-test', created: true });

      // No --genesis: the datadir knows its network. The miner keeps a core busy; niced, it
      // leaves the CPU to the commands under test, which wait for it only in send --wait.
      node = spawnCli(['node', '--datadir', datadir, '--mine', '--coinbase', coinbase, '--threads', '256', '--p2p-host', '127.0.0.1', '--p2p-port', '0', '--rpc-port', '0', '--http-port', '0', '--no-mdns', '--log-level', 'info'], { nice: 15 });
      const started = node;
      try {
        rpc = await waitFor('rpc.json', async () => {
          if (started.child.exitCode !== null) throw new Error(`the node exited with status ${started.child.exitCode}`);
          const file = join(datadir, 'rpc.json');
          return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as typeof rpc) : undefined;
        }, 30_000);
        await waitFor('cairn status', async () => ((await runCli(['status', '--datadir', datadir, '--json'])).code === 0 ? true : undefined), 20_000);
      } catch (err) {
        throw new Error(`${(err as Error).message}\nnode stdout:\n${started.stdout()}\nnode stderr:\n${started.stderr()}`);
      }
      assert.equal(rpc.pid, node.pid);
      assert.equal(statSync(join(datadir, 'rpc.json')).mode & 0o777, 0o600);
    });

    describe('send and read back', () => {
      it('send --wait confirms a transfer and prints {id, status, blockHeight}', async function () {
        this.timeout(60_000);
        const r = await cliJson<{ id: string; status: string; blockHeight: number }>(
          ['send', '--datadir', datadir, '--keystore', keystore, '--from', DEVNET_ADDRESS, '--to', newAddress, '--amount', '12345', '--fee', '10', '--wait', '--timeout', '45', '--password-file', passwordFile],
          { timeoutMs: 55_000 },
        );
        assert.deepEqual(Object.keys(r).sort(), ['blockHeight', 'id', 'status']);
        assert.match(r.id, HEX64);
        assert.equal(r.status, 'confirmed');
        assert.ok(Number.isSafeInteger(r.blockHeight) && r.blockHeight >= 1, String(r.blockHeight));
        sent = { id: r.id, blockHeight: r.blockHeight };
      });

      it('account shows both sides, as decimal strings', async () => {
        assert.ok(sent, 'the send test ran');
        const [to, from] = await Promise.all([
          cliJson<Record<string, string>>(['account', newAddress, '--datadir', datadir]),
          cliJson<Record<string, string>>(['account', DEVNET_ADDRESS, '--datadir', datadir]),
        ]);
        for (const a of [to, from]) {
          for (const key of ['address', 'balance', 'nonce']) assert.ok(key in a, key);
          assert.match(a.balance!, DECIMAL);
          assert.match(a.nonce!, DECIMAL);
        }
        assert.deepEqual([to.address, to.balance, to.nonce], [newAddress, '12345', '0']);
        assert.deepEqual([from.address, from.balance, from.nonce], [DEVNET_ADDRESS, (DEVNET_BALANCE - 12_345n - 10n).toString(), '1']);
      });

      it("account --light on a full node's datadir says it is one, not a TypeError", async () => {
        // From the docs review: it failed with "Cannot read properties of undefined (reading 'height')".
        const r = await runCli(['account', newAddress, '--light', '--datadir', datadir]);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /is a full node's datadir, not a light client's/);
        assert.doesNotMatch(r.stderr, /TypeError|internal error/);
      });

      it('tx and block read the transfer back at the height send reported', async () => {
        assert.ok(sent);
        const reward = BigInt((JSON.parse(readFileSync(genesisFile, 'utf8')) as { reward: string }).reward);
        const [t, b] = await Promise.all([
          cliJson<Record<string, unknown>>(['tx', sent.id, '--datadir', datadir]),
          cliJson<{ height: number; hash: string; txs: string[]; mainChain: boolean; coinbase: { to: string; amount: string } }>(['block', String(sent.blockHeight), '--datadir', datadir]),
        ]);
        assert.deepEqual(
          { id: t.id, status: t.status, blockHeight: t.blockHeight, from: t.from, to: t.to, amount: t.amount, fee: t.fee, nonce: t.nonce },
          { id: sent.id, status: 'confirmed', blockHeight: sent.blockHeight, from: DEVNET_ADDRESS, to: newAddress, amount: '12345', fee: '10', nonce: '0' },
        );
        assert.equal(t.blockHash, b.hash);
        assert.equal(b.height, sent.blockHeight);
        assert.ok(b.txs.includes(sent.id));
        assert.equal(b.mainChain, true);
        // The miner is paid the reward and the fee.
        assert.deepEqual(b.coinbase, { to: coinbase, amount: (reward + 10n).toString() });
      });

      it('send without --wait prints {id}; tx shows it pending or confirmed', async function () {
        this.timeout(40_000);
        const r = await cliJson<{ id: string }>(
          ['send', '--datadir', datadir, '--keystore', keystore, '--from', newAddress, '--to', DEVNET_ADDRESS, '--amount', '1000', '--fee', '1'],
          { env: { CAIRN_PASSWORD: envPassword } },
        );
        assert.deepEqual(Object.keys(r), ['id']);
        assert.match(r.id, HEX64);
        const t = await cliJson<{ status: string; blockHeight: number | null }>(['tx', r.id, '--datadir', datadir]);
        if (t.status === 'pending') assert.equal(t.blockHeight, null);
        else assert.ok(t.status === 'confirmed' && typeof t.blockHeight === 'number', JSON.stringify(t));
        await waitFor('the second transfer to confirm', async () => ((await rpcResult<{ status: string }>('getTransaction', { id: r.id })).status === 'confirmed' ? true : undefined), 30_000);
        const account = await rpcResult<{ balance: string; nonce: string }>('getAccount', { address: newAddress });
        assert.deepEqual([account.balance, account.nonce], [String(12_345 - 1_001), '1']);
      });

      it('mempool, peers and status answer in JSON; status has every key of the contract', async () => {
        assert.ok(sent);
        const [mempool, peers, s] = await inPairs(['mempool', 'peers', 'status'], (c) => cliJson<Record<string, unknown>>([c, '--datadir', datadir]));
        assert.ok(Number.isSafeInteger(mempool!.size) && Number.isSafeInteger(mempool!.bytes));
        const txs = mempool!.txs as { id: string }[];
        assert.equal(txs.length, mempool!.size);
        assert.ok(!txs.some((t) => t.id === sent!.id), 'a confirmed transaction left the mempool');
        assert.deepEqual(peers, []);

        for (const key of ['network', 'genesis', 'height', 'head', 'totalWork', 'peers', 'mempool', 'listen']) assert.ok(key in s!, key);
        assert.equal(s!.network, 'cairn-cli-test');
        assert.equal(s!.genesis, genesisHashHex(parseGenesis(readFileSync(genesisFile, 'utf8'))));
        assert.ok(typeof s!.height === 'number' && s!.height >= sent.blockHeight);
        assert.match(s!.head as string, HEX64);
        assert.match(s!.totalWork as string, DECIMAL);
        assert.equal(s!.peers, 0);
        assert.ok(Number.isSafeInteger(s!.mempool));
        const listen = s!.listen as string[];
        assert.ok(Array.isArray(listen) && listen.length > 0);
        const { peerId } = await rpcResult<{ peerId: string }>('status', {});
        for (const a of listen) assert.match(a, new RegExp(`^/ip4/127\\.0\\.0\\.1/tcp/\\d+/p2p/${peerId}$`));
      });

      it('--rpc aimed at the explorer\'s HTTP port: that address answers, but not JSON-RPC', async () => {
        assert.ok(node);
        const logged = node.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; url?: string });
        const http = logged.find((l) => l.msg === 'explorer and REST API')?.url;
        assert.ok(http, 'the node logs its explorer\'s address');
        assertOneLineError(await runCli(['status', '--rpc', http, '--rpc-token', rpc.token]), new RegExp(`^cairn: ${http.replace(/[.]/g, '\\.')} answers, but not JSON-RPC \\(is it the explorer's --http-port\\?\\)$`), 1);
      });

      it('reaches the same node by --rpc URL and --rpc-token', async () => {
        const [byUrl, refused] = await Promise.all([
          cliJson<{ network: string }>(['status', '--rpc', rpc.url, '--rpc-token', rpc.token]),
          runCli(['status', '--rpc', rpc.url, '--rpc-token', 'not-the-token']),
        ]);
        assert.equal(byUrl.network, 'cairn-cli-test');
        assertOneLineError(refused, /refused the RPC token/, 1);
      });
    });

    describe('errors against a running node', () => {
      const send = (extra: string[], password = passwordFile) =>
        runCli(['send', '--datadir', datadir, '--keystore', keystore, '--from', DEVNET_ADDRESS, '--to', newAddress, '--amount', '1', '--password-file', password, ...extra]);

      it('a wrong password or a missing keystore: one line, and no transaction', async () => {
        const before = await rpcResult<{ nextNonce: string }>('getAccount', { address: DEVNET_ADDRESS });
        const [wrong, missing] = await Promise.all([send([], wrongPasswordFile), send(['--keystore', join(dir.path, 'no-such-keystore')])]);
        assertOneLineError(wrong, /wrong password for cairn12rqpp3a5l5vef8weqsvd42g9rzmqx4la30zrhz/, 1);
        assertOneLineError(missing, /no keystore at .*no-such-keystore/, 1);
        const after = await rpcResult<{ nextNonce: string }>('getAccount', { address: DEVNET_ADDRESS });
        assert.equal(after.nextNonce, before.nextNonce);
      });

      it('a malformed --to address (bad checksum), amount or fee', async () => {
        const badTo = newAddress.slice(0, -1) + (newAddress.endsWith('q') ? 'p' : 'q');
        // A later flag wins over the one send() gave: parseArgs keeps the last.
        const cases: [string[], RegExp][] = [
          [['--to', badTo], /invalid --to address.*checksum/i],
          [['--amount', '1.5'], /invalid --amount "1\.5"/],
          [['--amount=-3'], /invalid --amount "-3"/],
          [['--amount', '-3'], /--amount/], // parseArgs takes "-3" for an option: still one line
          [['--amount', 'abc'], /invalid --amount "abc"/],
          [['--fee', '0x10'], /invalid --fee "0x10"/],
        ];
        const results = await inPairs(cases, ([args]) => send(args));
        results.forEach((r, i) => assertOneLineError(r, cases[i]![1], 2));
      });

      it('an unknown transaction and a block beyond the tip', async () => {
        const [tx, block] = await Promise.all([
          runCli(['tx', 'ab'.repeat(32), '--datadir', datadir]),
          runCli(['block', '999999999', '--datadir', datadir]),
        ]);
        assertOneLineError(tx, /no transaction (ab)+/, 1);
        assertOneLineError(block, /^cairn: no such block: height 999999999 is above the tip \(\d+\)$/, 1);
        // The largest height the CLI takes: in its words too, not the node's about its parameter.
        assertOneLineError(await runCli(['block', '999999999999999', '--datadir', datadir]), /^cairn: no such block: height 999999999999999 is above the tip \(\d+\)$/, 1);
      });

      it('init refuses the datadir for another network, and keeps its own without --genesis', async () => {
        const [other, same] = await Promise.all([
          runCli(['init', '--datadir', datadir, '--genesis', join(REPO, 'genesis.json')]),
          cliJson(['init', '--datadir', datadir]),
        ]);
        assertOneLineError(other, /already belongs to the network "cairn-cli-test"/, 1);
        assert.deepEqual(same, { datadir, network: 'cairn-cli-test', created: false });
      });
    });

    describe('the JSON-RPC server', () => {
      it('refuses a request without the token, or with a wrong one (401)', async () => {
        const none = await post(request('status', {}));
        assert.equal(none.status, 401);
        assert.equal(((await none.json()) as { error: { code: number } }).error.code, -32600);
        for (const header of [`Bearer ${'0'.repeat(rpc.token.length)}`, `Bearer ${rpc.token.slice(0, -1)}`, `Basic ${Buffer.from(`x:${rpc.token}`).toString('base64')}`, rpc.token]) {
          const res = await post(request('status', {}), { authorization: header });
          assert.equal(res.status, 401, header);
          await res.body?.cancel();
        }
      });

      it('answers malformed JSON, unknown methods and bad params with JSON-RPC errors', async () => {
        const rpcError = async (body: string) => {
          const res = await post(body, auth());
          assert.equal(res.status, 200);
          return (await res.json()) as { id: unknown; error?: { code: number; message: string } };
        };
        assert.equal((await rpcError('{"jsonrpc":"2.0","id":1,"method":')).error?.code, -32700);
        const unknown = await rpcError(request('mineMeABlock', {}, 7));
        assert.deepEqual([unknown.id, unknown.error?.code], [7, -32601]);
        assert.equal((await rpcError(request('toString', {}))).error?.code, -32601);
        assert.equal((await rpcError(request('getAccount', { address: 42 }))).error?.code, -32602);
        assert.equal((await rpcError(request('getAccount', { address: 'cairn1nope' }))).error?.code, -32602);
        assert.equal((await rpcError(request('status', [1]))).error?.code, -32602);
        assert.equal((await rpcError('"just a string"')).error?.code, -32600);
      });

      it('runs notifications (no id) without answering them, alone or in a batch, as JSON-RPC 2.0 says', async () => {
        // From a review: they were answered with id null.
        const alone = await post('{"jsonrpc":"2.0","method":"status"}', auth());
        assert.equal(alone.status, 204);
        assert.equal(await alone.text(), '');
        const onlyNotifications = await post('[{"jsonrpc":"2.0","method":"getTips"},{"jsonrpc":"2.0","method":"nope"}]', auth());
        assert.equal(onlyNotifications.status, 204);
        await onlyNotifications.body?.cancel();
        const mixed = await post(`[{"jsonrpc":"2.0","method":"status"},${request('status', {}, 9)},{"method":"status"}]`, auth());
        const answers = (await mixed.json()) as { id: unknown; error?: { code: number } }[];
        assert.deepEqual(answers.map((a) => [a.id, a.error?.code]), [[9, undefined], [null, -32600]], 'the request and the invalid one answered, the notification not');
      });

      it('refuses a body over 1 MiB (413), declared or streamed, and keeps serving', async () => {
        const big = request('status', { pad: 'x'.repeat(1 << 20) });
        const declared = await post(big, auth());
        assert.equal(declared.status, 413);
        await declared.body?.cancel();

        // Without a Content-Length the server has to count as it reads.
        const chunk = new TextEncoder().encode('x'.repeat(64 * 1024));
        let chunks = 0;
        const stream = new ReadableStream<Uint8Array>({
          pull(controller) {
            if (chunks++ < 24) controller.enqueue(chunk);
            else controller.close();
          },
        });
        const streamed = await post(stream, auth(), { duplex: 'half' } as RequestInit);
        assert.equal(streamed.status, 413);
        await streamed.body?.cancel();

        assert.equal((await rpcResult<{ network: string }>('status', {})).network, 'cairn-cli-test');
        assertOk(await runCli(['status', '--datadir', datadir, '--json']));
      });
    });

    describe('stop', () => {
      it('SIGTERM stops the node cleanly: exit 0, rpc.json removed, JSON logs', async function () {
        this.timeout(30_000);
        assert.ok(node);
        const stopped = await stopChild(node, 15_000);
        assert.deepEqual(stopped, { code: 0, signal: null, graceful: true }, node.stderr());
        assert.equal(existsSync(join(datadir, 'rpc.json')), false);
        // stdout is not a terminal: one JSON record per line.
        const messages = node.stdout().trim().split('\n').map((line) => (JSON.parse(line) as { msg: string }).msg);
        for (const m of ['node started', 'mining', 'mined block', 'stopping', 'stopped']) assert.ok(messages.includes(m), m);
        // --threads 256 hashes on the node's worker threads, one per core: the log says how many, not 256.
        const mining = node.stdout().trim().split('\n').map((line) => JSON.parse(line) as { msg: string; threads?: number; asked?: number }).find((r) => r.msg === 'mining');
        assert.deepEqual([mining?.threads, mining?.asked], [availableParallelism(), 256]);
        assert.equal(node.stderr(), '');
        assertOneLineError(await runCli(['status', '--datadir', datadir]), /no node is running/, 1);
      });
    });
  });
});
