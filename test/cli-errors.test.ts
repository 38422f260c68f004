/**
 * The errors a newcomer meets, through real processes, with the text they read: each names the
 * cause and the fix (the port and its flag, the pid holding a datadir, the option that is unknown,
 * what a transfer needs and what the sender has), and send --wait says at once what it waits for
 * and when nothing can confirm the transaction.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { toHex } from '../ledger/bytes.ts';
import { encodeAddress } from '../ledger/keys.ts';
import { signTransaction } from '../ledger/transaction.ts';
import { cairnCommand } from '../cli/self.ts';
import { generateDatadir } from '../cli/cmd-generate.ts';
import { tempDir, testKey } from './helpers/fixtures.ts';
import { withCompileCache } from './helpers/compile-cache.ts';
import { DEVNET_ADDRESS, DEVNET_PRIVATE_KEY, REPO, cliJson, closedPort, holdPort, killAll, runCli, spawnCli, stopChild, waitFor, type CliChild, type CliResult } from './helpers/cli.ts';

/** A node's or light client's: on 127.0.0.1 only, finding nobody by mDNS. */
const NODE_FLAGS = ['--p2p-host', '127.0.0.1', '--no-mdns', '--log-level', 'warn'];
/** A well-formed peer id, of no running node: a light client's bootstrap peer, on a closed port (`nowhere`). */
const NOBODY = '12D3KooWGq2cz1Hf4G2bMXRDeEcvyrPkXV5ysPpQtFMmvFjfpw6Q';

/** The last line of stderr, which must be the one error line, and the status. */
function failure(r: CliResult): { code: number | null; line: string } {
  const lines = r.stderr.trimEnd().split('\n');
  assert.doesNotMatch(r.stderr, /^\s+at /m, r.stderr);
  return { code: r.code, line: lines.at(-1)! };
}

describe('errors that name the fix, through real processes', function () {
  this.timeout(60_000);
  const dir = tempDir('cairn-cli-errors-');
  const keystore = join(dir.path, 'keys');
  const passwordFile = join(dir.path, 'password');
  const datadir = join(dir.path, 'busy');
  const held: Server[] = [];
  let node: CliChild | undefined;
  let light: CliChild | undefined;
  let pid = 0;
  let nowhere = '';
  /** An IPv4 address from the ranges kept for documentation (RFC 5737) that this machine does not have. */
  const foreign = ['192.0.2.1', '198.51.100.1', '203.0.113.1'].find((a) => !Object.values(networkInterfaces()).flat().some((i) => i?.address === a))!;

  before(async function () {
    this.timeout(60_000);
    writeFileSync(passwordFile, 'pw\n', { mode: 0o600 });
    nowhere = `/ip4/127.0.0.1/tcp/${await closedPort()}/p2p/${NOBODY}`;
    writeFileSync(join(dir.path, 'devkey.hex'), DEVNET_PRIVATE_KEY + '\n');
    await cliJson(['keys', 'import', '--keystore', keystore, '--password-file', passwordFile, join(dir.path, 'devkey.hex')]);
    // The bundled devnet, not mining and alone: nothing can confirm a transaction here.
    node = spawnCli(['node', '--datadir', datadir, '--p2p-port', '0', '--rpc-port', '0', '--http-port', '0', ...NODE_FLAGS]);
    const started = node;
    await waitFor('the node to answer', async () => {
      if (started.child.exitCode !== null) throw new Error(`the node exited: ${started.stderr()}`);
      return (await runCli(['status', '--datadir', datadir, '--json'])).code === 0 ? true : undefined;
    }, 40_000);
    pid = (JSON.parse(readFileSync(join(datadir, 'rpc.json'), 'utf8')) as { pid: number }).pid;
  });
  afterEach(() => killAll([node, light]));
  after(async () => {
    if (node) await stopChild(node, 10_000);
    if (light) await stopChild(light, 10_000);
    await killAll();
    for (const s of held) s.close();
    dir.remove();
  });

  it('a P2P port in use: names the port and --p2p-port', async () => {
    const { port, server } = await holdPort();
    held.push(server);
    const r = await runCli(['node', '--datadir', join(dir.path, 'p2p'), '--p2p-port', String(port), '--rpc-port', '0', '--http-port', '0', ...NODE_FLAGS]);
    assert.deepEqual(failure(r), { code: 1, line: `cairn: P2P port ${port} is already in use (another cairn node?): choose another with --p2p-port N, or --p2p-port 0 for any free port` });
    assert.equal(existsSync(join(dir.path, 'p2p', 'rpc.json')), false);
  });

  it('an RPC port in use: names the port and --rpc-port', async () => {
    const { port, server } = await holdPort();
    held.push(server);
    const r = await runCli(['node', '--datadir', join(dir.path, 'rpc'), '--p2p-port', '0', '--rpc-port', String(port), '--http-port', '0', ...NODE_FLAGS]);
    assert.deepEqual(failure(r), { code: 1, line: `cairn: RPC port ${port} is already in use (another cairn node?): choose another with --rpc-port N, or --rpc-port 0 for any free port` });
  });

  it('an HTTP port in use: names the port and --http-port', async () => {
    const { port, server } = await holdPort();
    held.push(server);
    const r = await runCli(['node', '--datadir', join(dir.path, 'http'), '--p2p-port', '0', '--rpc-port', '0', '--http-port', String(port), ...NODE_FLAGS]);
    assert.deepEqual(failure(r), { code: 1, line: `cairn: HTTP port ${port} (explorer and REST API) is already in use (another cairn node?): choose another with --http-port N, or --http-port 0 for any free port` });
  });

  it('a light client: an RPC or P2P port in use names the port and its flag, in our words, not libp2p\'s', async () => {
    const [rpcHeld, p2pHeld] = [await holdPort(), await holdPort()];
    held.push(rpcHeld.server, p2pHeld.server);
    const [rpc, p2p] = await Promise.all([
      runCli(['light', '--datadir', join(dir.path, 'light-rpc'), '--bootstrap', nowhere, '--rpc-port', String(rpcHeld.port), ...NODE_FLAGS]),
      runCli(['light', '--datadir', join(dir.path, 'light-p2p'), '--bootstrap', nowhere, '--p2p-port', String(p2pHeld.port), '--rpc-port', '0', ...NODE_FLAGS]),
    ]);
    assert.deepEqual(failure(rpc), { code: 1, line: `cairn: RPC port ${rpcHeld.port} is already in use (another cairn node?): choose another with --rpc-port N, or --rpc-port 0 for any free port` });
    assert.deepEqual(failure(p2p), { code: 1, line: `cairn: P2P port ${p2pHeld.port} is already in use (another cairn node?): choose another with --p2p-port N, or --p2p-port 0 for any free port` });
    assert.doesNotMatch(p2p.stderr, /faultTolerance/);
    // One free port for both: each alone passes the probe; the second listener failed on the first.
    const free = await closedPort();
    const twice = await runCli(['light', '--datadir', join(dir.path, 'light-twice'), '--bootstrap', nowhere, '--p2p-port', String(free), '--rpc-port', String(free), ...NODE_FLAGS]);
    assert.deepEqual(failure(twice), { code: 2, line: `cairn: --p2p-port and --rpc-port are both ${free}: each needs a port of its own (see cairn light --help)` });
    assert.equal(existsSync(join(dir.path, 'light-twice')), false);
  });

  it('a metrics port in use: names the port and --metrics-port; the same port given twice: a usage error', async () => {
    const { port, server } = await holdPort();
    held.push(server);
    const [inUse, twice] = await Promise.all([
      runCli(['node', '--datadir', join(dir.path, 'metrics'), '--p2p-port', '0', '--rpc-port', '0', '--http-port', '0', '--metrics-port', String(port), ...NODE_FLAGS]),
      runCli(['node', '--datadir', join(dir.path, 'twice'), '--p2p-port', '0', '--rpc-port', String(port), '--http-port', '0', '--metrics-port', String(port), ...NODE_FLAGS]),
    ]);
    assert.deepEqual(failure(inUse), { code: 1, line: `cairn: metrics port ${port} (Prometheus) is already in use (another cairn node?): choose another with --metrics-port N, or --metrics-port 0 for any free port` });
    assert.deepEqual(failure(twice), { code: 2, line: `cairn: --rpc-port and --metrics-port are both ${port}: each needs a port of its own (see cairn node --help)` });
    assert.equal(existsSync(join(dir.path, 'twice')), false);
  });

  it('an --http-host or --p2p-host that is no address of this machine: names the flag, in one line without libp2p\'s stack frames', async () => {
    const [http, p2p] = await Promise.all([
      runCli(['node', '--datadir', join(dir.path, 'http-host'), '--p2p-port', '0', '--rpc-port', '0', '--http-port', '0', ...NODE_FLAGS, '--http-host', foreign]),
      runCli(['node', '--datadir', join(dir.path, 'p2p-host'), '--p2p-port', '0', '--rpc-port', '0', '--http-port', '0', ...NODE_FLAGS, '--p2p-host', foreign]),
    ]);
    const advice = 'give one of its addresses, 127.0.0.1 for this machine only, or 0.0.0.0 for all';
    assert.deepEqual(failure(http), { code: 1, line: `cairn: --http-host ${foreign} is not an address of this machine (EADDRNOTAVAIL): ${advice}` });
    assert.deepEqual(failure(p2p), { code: 1, line: `cairn: --p2p-host ${foreign} is not an address of this machine (EADDRNOTAVAIL): ${advice}` });
  });

  it('a --p2p-host that is a name, or CAIRN_P2P_HOST: a usage error naming it, before the datadir is created', async () => {
    const [flag, env] = await Promise.all([
      runCli(['node', '--datadir', join(dir.path, 'named-host'), '--p2p-port', '0', '--rpc-port', '0', '--http-port', '0', '--no-mdns', '--p2p-host', 'localhost']),
      runCli(['node', '--datadir', join(dir.path, 'named-host'), '--p2p-port', '0', '--rpc-port', '0', '--http-port', '0', '--no-mdns'], { env: { CAIRN_P2P_HOST: 'localhost' } }),
    ]);
    const advice = '127.0.0.1 (or ::1) for this machine only, 0.0.0.0 (or ::) for all its addresses';
    assert.deepEqual(failure(flag), { code: 2, line: `cairn: --p2p-host must be an IP address, got "localhost": ${advice} (see cairn node --help)` });
    assert.deepEqual(failure(env), { code: 2, line: `cairn: CAIRN_P2P_HOST must be an IP address, got "localhost": ${advice} (see cairn node --help)` });
    assert.equal(existsSync(join(dir.path, 'named-host')), false);
  });

  it('a --datadir that is a file, lies under a file or cannot be made, and a damaged genesis.json in a datadir: each named', async () => {
    const file = join(dir.path, 'a-file');
    writeFileSync(file, '');
    const damaged = join(dir.path, 'damaged');
    mkdirSync(damaged);
    writeFileSync(join(damaged, 'genesis.json'), '{"name": ');
    const node = (datadir: string) => runCli(['node', '--datadir', datadir, '--p2p-port', '0', '--rpc-port', '0', '--http-port', '0', ...NODE_FLAGS], { timeoutMs: 20_000 });
    // /proc takes no new folder: Node's own mkdir -p retried that for ever, at 100% of a core.
    const [isFile, underFile, cannot, genesis] = await Promise.all([node(file), node(join(file, 'data')), node('/proc/cairn-none/data'), node(damaged)]);
    assert.deepEqual(failure(isFile), { code: 1, line: `cairn: the datadir ${file} is a file, not a directory: give --datadir a directory (a new one is made)` });
    assert.deepEqual(failure(underFile), { code: 1, line: `cairn: cannot create the datadir ${join(file, 'data')}: ${file} is a file, not a directory; give --datadir a directory you can write` });
    assert.deepEqual(failure(cannot), { code: 1, line: 'cairn: cannot create the datadir /proc/cairn-none/data: /proc/cairn-none cannot be created there; give --datadir a directory you can write' });
    const { code, line } = failure(genesis);
    assert.equal(code, 1);
    assert.match(line, new RegExp(`^cairn: ${join(damaged, 'genesis.json')}, the datadir's copy of its network's genesis, is damaged \\(not valid JSON .*\\): put that network's genesis file back in its place$`));
  });

  it('a second node on the same datadir: names the running pid and cairn stop', async () => {
    const r = await runCli(['node', '--datadir', datadir, '--p2p-port', '0', '--rpc-port', '0', '--http-port', '0', ...NODE_FLAGS]);
    assert.deepEqual(failure(r), { code: 1, line: `cairn: the datadir ${datadir} is in use by the cairn node with pid ${pid}: stop it first (cairn stop --datadir ${datadir}), or give this one another --datadir` });
    // The running node did not notice.
    assert.equal((await cliJson<{ height: number }>(['status', '--datadir', datadir])).height, 0);
  });

  it('run from another folder than the node\'s: names the folder ./data stands for there, and --datadir', async () => {
    // From a newcomer's first hour: "no node is running on data" about a node that was running,
    // in the folder the walkthrough started it from.
    const elsewhere = join(dir.path, 'elsewhere');
    mkdirSync(elsewhere);
    const [status, light] = await Promise.all([runCli(['status'], { cwd: elsewhere }), runCli(['account', DEVNET_ADDRESS, '--light'], { cwd: elsewhere })]);
    assert.deepEqual(failure(status), { code: 1, line: `cairn: no node is running on data (${join(elsewhere, 'data')}): it has no rpc.json; if one runs on another datadir, give that --datadir, else start one with: cairn node --datadir data` });
    assert.deepEqual(failure(light), { code: 1, line: `cairn: no light client is running on light (${join(elsewhere, 'light')}); start one with: cairn light --datadir light --bootstrap MULTIADDR` });
  });

  it('an unknown option: one line of our own, with the option nearest a typo', async () => {
    const [bogus, typo, noValue] = await Promise.all([
      runCli(['status', '--bogus']),
      runCli(['send', '--amout', '5']),
      runCli(['blocks', '--last']),
    ]);
    assert.deepEqual([bogus.code, bogus.stdout, bogus.stderr], [2, '', 'cairn: unknown option --bogus (see cairn status --help)\n']);
    assert.equal(typo.stderr, 'cairn: unknown option --amout; did you mean --amount? (see cairn send --help)\n');
    assert.equal(noValue.stderr, 'cairn: --last needs a value (one that starts with "-" is written --last=VALUE) (see cairn blocks --help)\n');
  });

  it('an unknown command: one line, with the command nearest a typo; help COMMAND is COMMAND --help', async () => {
    // From a newcomer's first hour: options had "did you mean", commands did not; "cairn help send"
    // printed the list of commands; and "cairn toString" (Object's) ran, did nothing and exited 0.
    const [typo, plural, inherited, helpSend, helpTypo, sendHelp, flagFirst] = await Promise.all([
      runCli(['stauts']),
      runCli(['key', 'new']),
      runCli(['toString']),
      runCli(['help', 'send']),
      runCli(['help', 'stauts']),
      runCli(['send', '--help']),
      runCli(['--json', 'status']),
    ]);
    assert.deepEqual([flagFirst.code, flagFirst.stderr], [2, 'cairn: --json goes after the command, as every flag: cairn status --json (see cairn --help)\n']);
    assert.deepEqual([typo.code, typo.stdout, typo.stderr], [2, '', 'cairn: unknown command "stauts"; did you mean status? (see cairn --help)\n']);
    assert.deepEqual([plural.code, plural.stderr], [2, 'cairn: unknown command "key"; did you mean keys? (see cairn --help)\n']);
    assert.deepEqual([inherited.code, inherited.stdout, inherited.stderr], [2, '', 'cairn: unknown command "toString" (see cairn --help)\n']);
    assert.deepEqual([helpSend.code, helpSend.stdout, helpSend.stderr], [0, sendHelp.stdout, '']);
    assert.match(helpSend.stdout, /^Usage: cairn send /);
    assert.deepEqual([helpTypo.code, helpTypo.stderr], [2, typo.stderr]);
  });

  it('insufficient funds: need (amount + fee) and have, in coins, before the password is asked', async () => {
    const poor = encodeAddress(testKey(77).address);
    writeFileSync(join(dir.path, 'poor.hex'), toHex(testKey(77).privateKey) + '\n');
    await cliJson(['keys', 'import', '--keystore', keystore, '--password-file', passwordFile, join(dir.path, 'poor.hex')]);
    // No --password-file and no terminal: reaching the password would fail differently.
    const r = await runCli(['send', '--datadir', datadir, '--keystore', keystore, '--from', poor, '--to', DEVNET_ADDRESS, '--amount', '5000', '--fee', '1']);
    assert.deepEqual(failure(r), { code: 1, line: `cairn: insufficient funds: need 0.00005001 CRN (0.00005 CRN + fee 0.00000001 CRN), have 0 CRN in ${poor}` });
    const coins = await runCli(['send', '--datadir', datadir, '--keystore', keystore, '--from', poor, '--to', DEVNET_ADDRESS, '--amount', '12.5CRN']);
    assert.match(failure(coins).line, new RegExp(`^cairn: insufficient funds: need 12\\.5\\d* CRN \\(12\\.5 CRN \\+ fee 0\\.\\d+ CRN\\), have 0 CRN in ${poor}$`));
  });

  it('a mining node on a keystore of several keys is told to say which one it pays, not given the first', async () => {
    // From a review: the first by name was taken, which after the walkthrough's import of the
    // public development key could be that key, spendable by anyone.
    const r = await runCli(['node', '--datadir', join(dir.path, 'miner'), '--mine', '--keystore', keystore, '--p2p-port', '0', '--rpc-port', '0', '--http-port', '0', ...NODE_FLAGS]);
    const { code, line } = failure(r);
    assert.notEqual(code, 0);
    assert.match(line, /^cairn: .* holds 2 keys: say which one mining pays with --coinbase ADDRESS \(cairn keys list --keystore .*\)$/);
  });

  it('a fee the node suggests above --max-fee is refused before the password is asked', async () => {
    // From a review: the node's estimate was signed as it came, whatever it was.
    const r = await runCli(['send', '--datadir', datadir, '--keystore', keystore, '--from', DEVNET_ADDRESS, '--to', DEVNET_ADDRESS, '--amount', '5000', '--max-fee', '0']);
    assert.match(failure(r).line, /^cairn: the node suggests a fee of 0\.\d+ CRN, above --max-fee 0 CRN: give --fee, or a higher --max-fee$/);
  });

  it('a --fee below the node\'s minimum is refused before the password is asked, in coins, with the way out', async () => {
    // From a newcomer's first hour: the node's refusal came after the password, as "fee 0 is
    // below the minimum 1" (base units, and no word on what to give instead).
    const r = await runCli(['send', '--datadir', datadir, '--keystore', keystore, '--from', DEVNET_ADDRESS, '--to', DEVNET_ADDRESS, '--amount', '5000', '--fee', '0']);
    assert.deepEqual(failure(r), { code: 1, line: "cairn: --fee 0 CRN is below the node's minimum 0.00000001 CRN: give at least that, or leave --fee out for the node's suggestion (0.00000001 CRN)" });
  });

  it('insufficient funds from the node itself (a raw transaction): need (amount + fee), have', async () => {
    const { url, token } = JSON.parse(readFileSync(join(datadir, 'rpc.json'), 'utf8')) as { url: string; token: string };
    const tx = signTransaction({ chainId: 1337, to: testKey(1).address, amount: 5000n, fee: 1n, nonce: 0n }, testKey(78).privateKey);
    const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'sendRawTransaction', params: { tx: toHex(tx.bytes) } }) });
    const body = (await res.json()) as { error: { message: string; data: { code: string } } };
    assert.deepEqual(body.error.data, { code: 'MEMPOOL_INSUFFICIENT_BALANCE' });
    assert.equal(body.error.message, 'insufficient funds: need 5001 (5000 + fee 1), have 0 (base units)');
  });

  it('send --wait with no peers and no miner: the id at once, a warning at once, then the timeout says why', async () => {
    const child = spawn(process.execPath, [join(REPO, 'cli', 'main.ts'), 'send', '--datadir', datadir, '--keystore', keystore, '--password-file', passwordFile,
      '--from', DEVNET_ADDRESS, '--to', encodeAddress(testKey(5).address), '--amount', '1CRN', '--wait', '--timeout', '4'], { cwd: REPO, env: withCompileCache(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    // Both arrive while the command still waits, long before its 4 s are up.
    const id = await waitFor('the id on stdout', async () => /^([0-9a-f]{64})\n/.exec(stdout)?.[1], 20_000, 50);
    await waitFor('the warning', async () => (stderr.includes('warning: the node has no peers and does not mine') ? true : undefined), 20_000, 50);
    assert.equal(child.exitCode, null, 'still waiting when the id and the warning are out');
    assert.equal(await exited, 1);
    assert.equal(stdout, `${id}\n`);
    assert.match(stderr, /^waiting for a block to include it \(fee 0\.00000001 CRN, up to 4 s; /m);
    assert.match(stderr, /^warning: the node has no peers and does not mine: nothing can confirm this transaction until it gets a peer \(cairn node --bootstrap ADDR\) or mines \(cairn node --mine\)$/m);
    assert.equal(stderr.trimEnd().split('\n').at(-1), `cairn: ${id} was not confirmed within 4 s (still pending: the node has no peers and does not mine); cairn tx ${id} tells what became of it`);
  });

  it('cairn stop: the node answers, stops cleanly and exits 0; rpc.json is gone', async () => {
    assert.ok(node);
    const r = await cliJson<{ stopped: boolean; pid: number }>(['stop', '--datadir', datadir]);
    assert.deepEqual(r, { stopped: true, pid });
    assert.deepEqual(await node.exited, { code: 0, signal: null });
    assert.equal(existsSync(join(datadir, 'rpc.json')), false);
  });

  describe('a light client running on its datadir', () => {
    const lightDir = join(dir.path, 'light');

    before(async function () {
      this.timeout(60_000);
      light = spawnCli(['light', '--datadir', lightDir, '--bootstrap', nowhere, '--rpc-port', '0', ...NODE_FLAGS]);
      const started = light;
      await waitFor('the light client to write its rpc.json', async () => {
        if (started.child.exitCode !== null) throw new Error(`cairn light exited: ${started.stderr()}`);
        const file = join(lightDir, 'rpc.json');
        return existsSync(file) && (JSON.parse(readFileSync(file, 'utf8')) as { pid: number }).pid === started.pid ? true : undefined;
      }, 40_000);
    });

    it('a second light client on the same datadir: refused, naming the running pid and cairn stop; the first did not notice', async () => {
      assert.ok(light);
      const r = await runCli(['light', '--datadir', lightDir, '--bootstrap', nowhere, '--rpc-port', '0', ...NODE_FLAGS], { timeoutMs: 20_000 });
      assert.deepEqual(failure(r), { code: 1, line: `cairn: the datadir ${lightDir} is in use by the cairn light client with pid ${light.pid}: stop it first (cairn stop --datadir ${lightDir}), or give this one another --datadir` });
      assert.equal((JSON.parse(readFileSync(join(lightDir, 'rpc.json'), 'utf8')) as { pid: number }).pid, light.pid);
      assert.equal(light.child.exitCode, null);
      // Nor does one start on a full node's datadir, whose rpc.json it would take over.
      const onNode = await runCli(['light', '--datadir', datadir, '--bootstrap', nowhere, '--rpc-port', '0', ...NODE_FLAGS], { timeoutMs: 20_000 });
      assert.deepEqual(failure(onNode), { code: 1, line: `cairn: ${datadir} is a full node's datadir (it holds a chain store): give the light client a --datadir of its own (default ./light)` });
    });

    it('cairn status on it prints the light client\'s summary, and --json its status as it is', async () => {
      const [human, json] = await Promise.all([runCli(['status', '--datadir', lightDir]), runCli(['status', '--datadir', lightDir, '--json'])]);
      assert.equal(human.code, 0, human.stderr);
      assert.equal(human.stderr, '');
      assert.match(human.stdout, /^network +cairn-devnet-1 \(coin CRN with 8 decimals\)$/m);
      assert.match(human.stdout, /^client +light: headers only/m);
      assert.match(human.stdout, /^height +0$/m);
      assert.match(human.stdout, /^peers +0$/m);
      assert.match(human.stdout, /^banned +none$/m);
      assert.equal(json.code, 0, json.stderr);
      const s = JSON.parse(json.stdout) as { height: number; peers: number; banned: unknown[]; headerMemoryBytes: number };
      assert.deepEqual([s.height, s.peers, s.banned], [0, 0, []]);
      assert.ok(s.headerMemoryBytes > 0);
    });

    it('account --light with no peer at all says so, and what to check, not "no peer has our tip"', async () => {
      // From a newcomer's first hour: a light client whose --bootstrap node was not running
      // answered "no peer has our tip (height 0) yet", and its log said nothing.
      const r = await runCli(['account', DEVNET_ADDRESS, '--light', '--datadir', lightDir]);
      assert.deepEqual(failure(r), { code: 1, line: `cairn: the light client on ${lightDir} has no peers to ask for a proof: is the node it was given with --bootstrap running, and reachable from here? (cairn status --datadir ${lightDir})` });
    });

    it('a full node\'s commands on its datadir say that it is a light client\'s and what they need, not "unknown method"', async () => {
      const said = `cairn: ${lightDir} is a light client's datadir, and a light client answers only cairn status, cairn account ADDRESS --light and cairn stop: this command needs a full node's --datadir (default ./data)`;
      const results = await Promise.all([['tx', 'ab'.repeat(32)], ['proof', 'tx', 'ab'.repeat(32)], ['blocks'], ['peers']].map((args) => runCli([...args, '--datadir', lightDir])));
      for (const r of results) assert.deepEqual(failure(r), { code: 1, line: said });
    });

    it('cairn stop stops it cleanly: exit 0, rpc.json removed, and says it stopped the light client', async () => {
      assert.ok(light);
      const r = await runCli(['stop', '--datadir', lightDir]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), `stopped the light client (pid ${light.pid})`, 'not "the node": the user stopped a light client');
      assert.deepEqual(await light.exited, { code: 0, signal: null });
      assert.equal(existsSync(join(lightDir, 'rpc.json')), false);
    });

    it('once it has stopped, cairn status on its datadir says to start a light client there, not a node, and cairn stop that none runs', async () => {
      // From a newcomer's first hour: they offered "cairn node --datadir ./light", a full node in
      // the light client's folder.
      const [status, stop] = await Promise.all([runCli(['status', '--datadir', lightDir]), runCli(['stop', '--datadir', lightDir])]);
      const said = `cairn: no light client is running on ${lightDir}: it has no rpc.json; if one runs on another datadir, give that --datadir, else start one with: cairn light --datadir ${lightDir} --bootstrap MULTIADDR`;
      assert.deepEqual(failure(status), { code: 1, line: said });
      // What was asked for holds: no light client runs there (exit 0, cairn stop --help).
      assert.deepEqual([stop.code, stop.stdout, stop.stderr], [0, `no light client is running on ${lightDir}: nothing to stop\n`, '']);
    });

    it('a full node on its datadir is refused, before it makes a chain store there that the light client would refuse', async () => {
      // From a newcomer's first hour: cairn node --datadir ./light ran, and the light client then
      // would not start there again ("a full node's datadir").
      const [node, init] = await Promise.all([runCli(['node', '--datadir', lightDir, '--p2p-port', '0', '--rpc-port', '0', '--http-port', '0', ...NODE_FLAGS]), runCli(['init', '--datadir', lightDir])]);
      const said = `cairn: ${lightDir} is a light client's datadir (its headers, no chain store): give the node a --datadir of its own (default ./data)`;
      assert.deepEqual(failure(node), { code: 1, line: said });
      assert.deepEqual(failure(init), { code: 1, line: said });
      assert.equal(existsSync(join(lightDir, 'chain')), false);
    });
  });

  it('hints name a cairn that runs: "cairn" when bin/ is on PATH, else the launcher\'s path', () => {
    const bin = join(REPO, 'bin');
    assert.equal(cairnCommand({ PATH: `${bin}:/usr/bin` }, '/'), 'cairn');
    assert.equal(cairnCommand({ PATH: '/usr/bin' }, REPO), 'bin/cairn');
    assert.equal(cairnCommand({ PATH: '/usr/bin' }, dir.path), join(bin, 'cairn'));
  });

  it('bin/cairn runs the CLI under the bundled Node 24', async () => {
    const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const c = spawn(join(REPO, 'bin', 'cairn'), ['--version'], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      c.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      c.on('close', (code) => resolve({ code, out }));
    });
    assert.equal(r.code, 0);
    assert.match(r.out, /^cairn 0\.1\.0 \(Node\.js 24\.\d+\.\d+\)\n$/);
  });
});

describe('a datadir started with a flag or a file that does not fit it, through real processes', function () {
  this.timeout(60_000);
  const dir = tempDir('cairn-cli-flags-');
  let node: CliChild | undefined;
  after(async () => {
    if (node) await stopChild(node, 10_000);
    await killAll();
    dir.remove();
  });

  it('--snapshot-sync on a datadir past genesis says that it does nothing there and why, and the node runs on', async () => {
    const datadir = join(dir.path, 'past-genesis');
    await generateDatadir({ datadir, blocks: 30 });
    node = spawnCli(['node', '--datadir', datadir, '--snapshot-sync', '--p2p-port', '0', '--rpc-port', '0', '--http-port', '0', ...NODE_FLAGS]);
    const started = node;
    const line = await waitFor('the warning', async () => {
      if (started.child.exitCode !== null) throw new Error(`the node exited: ${started.stderr()}`);
      return started.stdout().split('\n').find((l) => l.includes('--snapshot-sync'));
    }, 40_000);
    assert.match(line, /does nothing here: the chain in .* is at height 30, not genesis, so it syncs on from there, executing every block; a snapshot sync needs a new --datadir/);
    assert.equal((await stopChild(started)).code, 0);
  });

  it("a store whose genesis.json is gone or another network's: the message names that file and the fix, not the bundled devnet", async () => {
    const datadir = join(dir.path, 'genesis-lost');
    await generateDatadir({ datadir, blocks: 3 });
    const own = readFileSync(join(datadir, 'genesis.json'), 'utf8');
    rmSync(join(datadir, 'genesis.json'));
    for (const command of ['init', 'node']) {
      const r = await runCli([command, '--datadir', datadir, '--p2p-port', '0', '--rpc-port', '0', '--http-port', '0', ...NODE_FLAGS].slice(0, command === 'init' ? 3 : undefined));
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /has a chain store but no genesis\.json \(its copy of its network's genesis\), and the store holds the network "cairn-generated-3" .* give that network's genesis file with --genesis FILE, which is copied back\n$/, command);
    }
    assert.equal(existsSync(join(datadir, 'genesis.json')), false, 'nothing copied in its place');
    writeFileSync(join(datadir, 'genesis.json'), readFileSync(join(REPO, 'genesis.json')));
    const r = await runCli(['node', '--datadir', datadir, '--p2p-port', '0', '--rpc-port', '0', '--http-port', '0', ...NODE_FLAGS]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /genesis-lost's genesis\.json is not the genesis of its store: the store holds the network "cairn-generated-3" .*not "cairn-devnet-1" .*; put the genesis file of the store's network back in /);
    writeFileSync(join(datadir, 'genesis.json'), own);
    assert.equal((await runCli(['init', '--datadir', datadir])).code, 0);
  });
});
