import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fromHex } from '../ledger/bytes.ts';
import { encodeAddress } from '../ledger/keys.ts';
import { decodeTransaction, type Transaction } from '../ledger/transaction.ts';
import { tempDir, testKey } from './helpers/fixtures.ts';
import { DEVNET_ADDRESS, DEVNET_PRIVATE_KEY, cliJson, killAll, runCli, spawnCli, stopChild, waitFor, writeTestGenesis, type CliChild, type CliResult } from './helpers/cli.ts';

describe('cairn send, against a stand-in for a node', function () {
  this.timeout(30_000);
  const dir = tempDir('cairn-send-stand-in-');
  const passwordFile = join(dir.path, 'password');
  const keystore = join(dir.path, 'keys');
  const servers: Server[] = [];
  before(async () => {
    writeFileSync(passwordFile, 'stand-in\n', { mode: 0o600 });
    writeFileSync(join(dir.path, 'devnet.hex'), DEVNET_PRIVATE_KEY + '\n');
    await cliJson(['keys', 'import', '--keystore', keystore, '--password-file', passwordFile, join(dir.path, 'devnet.hex')]);
  });
  afterEach(() => killAll()); // a send a failed test left waiting
  after(async () => {
    await Promise.all(servers.map((server) => new Promise((r) => server.close(r))));
    dir.remove();
  });

  /**
   * The URL of a JSON-RPC server that answers each method with `answers[method]`, and a submission
   * with what `submitted` returns for it: undefined cuts the connection (taken, the answer lost).
   */
  async function standIn(answers: Record<string, unknown>, submitted: (tx: Transaction) => unknown): Promise<string> {
    const server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => {
        const call = JSON.parse(body) as { id: number; method: string; params: { tx?: string } };
        const result = call.method === 'sendRawTransaction' ? submitted(decodeTransaction(fromHex(call.params.tx!))) : answers[call.method];
        if (result === undefined) return req.socket.destroy();
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ jsonrpc: '2.0', id: call.id, result }));
      });
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }
  const send = (url: string, amount: string, extra: string[]) => runCli(['send', '--rpc', url, '--rpc-token', 't', '--keystore', keystore, '--from', DEVNET_ADDRESS, '--to', DEVNET_ADDRESS, '--amount', amount, ...extra]);
  const status = { chainId: 4243, unit: 'CRN', decimals: 8, minFee: '1', feeEstimate: '1' };

  it('whose answer to the submission is lost: names the transfer it submitted and how to ask about it, not "is it running?" (sending again is a second payment)', async () => {
    const received: string[] = [];
    const url = await standIn({ status, getAccount: { address: DEVNET_ADDRESS, balance: '1000000', nonce: '0', nextNonce: '0' } }, (tx) => void received.push(tx.idHex));
    const r = await send(url, '5', ['--fee', '1', '--password-file', passwordFile]);
    assert.equal(received.length, 1);
    const id = received[0]!;
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stderr, `cairn: the node at ${url} did not answer the submission of ${id}, which it may have taken all the same: cairn tx ${id} tells, before you send again\n`);
  });

  it('--amount 0 is refused before the password without --nonce (a fee and a nonce for nothing), and sent with one (a cancellation)', async () => {
    const received: { amount: bigint; nonce: bigint }[] = [];
    const answers = { status, estimateFee: { fee: '1' }, getAccount: { address: DEVNET_ADDRESS, balance: '1000000', nonce: '0', nextNonce: '1' }, getMempool: { txs: [] } };
    const url = await standIn(answers, (tx) => {
      received.push({ amount: tx.amount, nonce: tx.nonce });
      return { id: tx.idHex };
    });
    // No --password-file: a prompt with no terminal would fail otherwise, so the refusal came first.
    for (const amount of ['0', '0CRN', '0.0 CRN']) {
      const r = await send(url, amount, ['--fee', '2']);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stderr, `cairn: --amount 0 moves nothing, yet would spend a fee and ${DEVNET_ADDRESS}'s next nonce: give an amount above 0; to cancel a pending transfer, send 0 to yourself with its --nonce and a fee at least 10% above its own (cairn mempool shows both) (see cairn send --help)\n`);
    }
    assert.deepEqual(received, []);
    const cancel = await send(url, '0', ['--fee', '2', '--nonce', '0', '--password-file', passwordFile]);
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.deepEqual(received, [{ amount: 0n, nonce: 0n }]);
  });

  it('at a light client (its status has no fees) is refused as a command a light client does not answer, not a TypeError, with --fee too', async () => {
    const url = await standIn({ status: { network: 'cairn-devnet-1', unit: 'CRN', decimals: 8, height: 3, headerMemoryBytes: 1024 } }, () => assert.fail('nothing is submitted'));
    for (const extra of [['--fee', '1'], []]) {
      const r = await send(url, '5', [...extra, '--password-file', passwordFile]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^cairn: the node at http:\/\/127\.0\.0\.1:\d+\/? is a light client, which answers only cairn status, cairn account ADDRESS --light and cairn stop: this command needs a full node's --datadir \(default \.\/data\)\n$/);
    }
  });

  /** A stand-in that takes every transfer and answers `getTransaction` with `state`. */
  async function acceptingStandIn(state: { status: string; blockHeight: number | null }): Promise<string> {
    const answers = { status, getAccount: { address: DEVNET_ADDRESS, balance: '1000000', nonce: '0', nextNonce: '0' }, getTransaction: { id: '', ...state, blockHash: null, from: DEVNET_ADDRESS, to: DEVNET_ADDRESS, amount: '5', fee: '1', nonce: '0' } };
    return standIn(answers, (tx) => ({ id: tx.idHex }));
  }

  it('--wait whose stdout reader has gone (| head -1, the id read) waits on and ends with its own status, with no stack', async () => {
    const url = await acceptingStandIn({ status: 'confirmed', blockHeight: 7 });
    const r = await runCli(['send', '--rpc', url, '--rpc-token', 't', '--keystore', keystore, '--from', DEVNET_ADDRESS, '--to', DEVNET_ADDRESS, '--amount', '5', '--fee', '1', '--password-file', passwordFile, '--wait'], { stdoutTo: 'gone' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, 'waiting for a block to include it (fee 0.00000001 CRN, up to 120 s; Ctrl-C stops waiting, not the transaction)\n');
  });

  it('--json --wait that fails after the transfer went (--timeout) prints its {id} with exit status 1: status 1 alone read as nothing sent, and a retry paid twice', async () => {
    const url = await acceptingStandIn({ status: 'pending', blockHeight: null });
    const r = await send(url, '5', ['--fee', '1', '--password-file', passwordFile, '--json', '--wait', '--timeout', '1']);
    assert.equal(r.code, 1, r.stderr);
    const { id } = JSON.parse(r.stdout) as { id: string };
    assert.match(r.stderr, new RegExp(`^cairn: ${id} was not confirmed within 1 s \\(still pending\\); cairn tx ${id} tells what became of it$`, 'm'));
  });

  it('--json --wait stopped by a signal (Ctrl-C, a CI job\'s SIGTERM) prints the {id} it sent, then ends by that signal', async () => {
    const url = await acceptingStandIn({ status: 'pending', blockHeight: null });
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      const c = spawnCli(['send', '--rpc', url, '--rpc-token', 't', '--keystore', keystore, '--from', DEVNET_ADDRESS, '--to', DEVNET_ADDRESS, '--amount', '5', '--fee', '1', '--password-file', passwordFile, '--json', '--wait']);
      await waitFor('the wait to begin', async () => (c.stderr().includes('waiting for a block') ? true : undefined), 20_000, 50);
      c.child.kill(signal);
      assert.deepEqual(await c.exited, { code: null, signal });
      assert.match((JSON.parse(c.stdout()) as { id: string }).id, /^[0-9a-f]{64}$/);
    }
  });
});

/**
 * `cairn send` run several at once from one key, against a real node that does not mine (so that
 * every transfer stays pending and each nonce is in plain sight in its mempool).
 */
describe('cairn send, several at once from one key', function () {
  this.timeout(60_000);
  const dir = tempDir('cairn-send-');
  const datadir = join(dir.path, 'data');
  const keystore = join(dir.path, 'keys');
  const passwordFile = join(dir.path, 'password');
  const recipients = [1, 2, 3, 4].map((i) => encodeAddress(testKey(7100 + i).address));
  let node: CliChild | undefined;
  let rpc: { url: string; token: string };

  const rpcResult = async <T>(method: string, params: unknown): Promise<T> => {
    const res = await fetch(rpc.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${rpc.token}` },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
      signal: AbortSignal.timeout(15_000),
    });
    const body = (await res.json()) as { result?: T; error?: { message: string } };
    if (body.error) throw new Error(body.error.message);
    return body.result as T;
  };
  const pendingFromDevnet = async () => (await rpcResult<{ txs: { id: string; from: string; to: string; amount: string; fee: string; nonce: string }[] }>('getMempool', {})).txs.filter((t) => t.from === DEVNET_ADDRESS);
  const send = (to: string, amount: string, extra: string[] = []): Promise<CliResult> =>
    runCli(['send', '--datadir', datadir, '--keystore', keystore, '--from', DEVNET_ADDRESS, '--to', to, '--amount', amount, '--password-file', passwordFile, '--json', ...extra], { timeoutMs: 45_000 });
  const ok = (r: CliResult): string => {
    assert.equal(r.code, 0, `status ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    return (JSON.parse(r.stdout) as { id: string }).id;
  };

  before(async function () {
    writeFileSync(passwordFile, 'send lock test\n', { mode: 0o600 });
    writeFileSync(join(dir.path, 'devnet.hex'), DEVNET_PRIVATE_KEY + '\n');
    await cliJson(['keys', 'import', '--keystore', keystore, '--password-file', passwordFile, join(dir.path, 'devnet.hex')]);
    await cliJson(['init', '--datadir', datadir, '--genesis', writeTestGenesis(dir.path, 'cairn-send-test')]);
    node = spawnCli(['node', '--datadir', datadir, '--p2p-host', '127.0.0.1', '--p2p-port', '0', '--rpc-port', '0', '--http-port', '0', '--no-mdns']);
    const started = node;
    rpc = await waitFor('rpc.json', async () => {
      if (started.child.exitCode !== null) throw new Error(`the node exited with status ${started.child.exitCode}: ${started.stderr()}`);
      const file = join(datadir, 'rpc.json');
      return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as typeof rpc) : undefined;
    }, 30_000);
    await waitFor('the node to answer', () => rpcResult('status', {}), 20_000);
  });
  afterEach(() => killAll([node]));
  after(async () => {
    if (node) await stopChild(node, 5_000);
    await killAll();
    dir.remove();
  });

  it('four sends started together each get a nonce of their own, none replaced or refused', async () => {
    // One pays more than the node's suggestion: against a pending transfer of the same nonce it
    // was a replacement, and the transfer it replaced was gone without a word to anyone.
    const results = await Promise.all([send(recipients[0]!, '1001'), send(recipients[1]!, '1002', ['--fee', '1000']), send(recipients[2]!, '1003'), send(recipients[3]!, '1004')]);
    const ids = results.map(ok);
    const pending = await pendingFromDevnet();
    assert.deepEqual(pending.map((t) => t.id).sort(), [...ids].sort(), 'every id a send printed is pending');
    assert.deepEqual(pending.map((t) => t.nonce).sort(), ['0', '1', '2', '3']);
    assert.deepEqual(pending.map((t) => `${t.to} ${t.amount}`).sort(), recipients.map((to, i) => `${to} ${1001 + i}`).sort());
  });

  it('send --wait whose transfer another replaces (--nonce, a higher fee) ends at once, naming the replacement', async function () {
    this.timeout(90_000);
    const payee = encodeAddress(testKey(7200).address);
    // The node does not mine: without the check, this wait ran out its --timeout, then said "still unknown".
    const waiting = send(payee, '2001', ['--wait', '--timeout', '40']);
    const first = await waitFor('the waiting send\'s transfer in the mempool', async () => (await pendingFromDevnet()).find((t) => t.to === payee), 30_000);
    const bump = ok(await send(payee, '2001', ['--nonce', first.nonce, '--fee', String(BigInt(first.fee) * 2n + 10n)]));
    const r = await waiting;
    assert.equal(r.code, 1, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
    assert.deepEqual(JSON.parse(r.stdout), { id: first.id }, 'the id of what it sent, as a send without --wait');
    assert.match(r.stderr, new RegExp(`^cairn: ${first.id} was replaced in the node's mempool by ${bump} \\(the same nonce ${first.nonce}, fee [0-9.]+ \\w+\\): it will not be confirmed; cairn tx ${bump} tells what becomes of that one$`, 'm'));
    assert.deepEqual((await pendingFromDevnet()).filter((t) => t.to === payee).map((t) => t.id), [bump]);
  });
});

describe('cairn send and cairn keys export from a key the keystore does not hold', () => {
  const dir = tempDir('cairn-send-no-key-');
  after(() => dir.remove());

  it('are refused before any password is asked, naming what the keystore holds and where a node keeps the key it mines to', async function () {
    this.timeout(30_000);
    const passwordFile = join(dir.path, 'password');
    writeFileSync(passwordFile, 'pw\n', { mode: 0o600 });
    writeFileSync(join(dir.path, 'devnet.hex'), DEVNET_PRIVATE_KEY + '\n');
    const keystore = join(dir.path, 'keys');
    await cliJson(['keys', 'import', '--keystore', keystore, '--password-file', passwordFile, join(dir.path, 'devnet.hex')]);
    // The node's coinbase key, say, which is in its datadir: no password (not a terminal) and no node
    // either, so the old order (node, then password, then key) failed on one of those first.
    const mined = encodeAddress(testKey(7300).address);
    const [send, exported] = await Promise.all([
      runCli(['send', '--rpc', 'http://127.0.0.1:9/', '--rpc-token', 't', '--keystore', keystore, '--from', mined, '--to', DEVNET_ADDRESS, '--amount', '5']),
      runCli(['keys', 'export', '--keystore', keystore, mined]),
    ]);
    const said = `cairn: no key for ${mined} in keystore ${keystore} (it holds ${DEVNET_ADDRESS}); the key a node mines to is in its datadir's keystore, e.g. --keystore ./data/keystore\n`;
    for (const r of [send, exported]) {
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stderr, said);
    }
  });
});
