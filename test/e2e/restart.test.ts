/**
 * Scenario 7 of the resilience suite: a `cairn node` process stopped with SIGTERM and started
 * again on its datadir resumes at the head it stopped at, with the same transactions pending.
 * Those survive because the node writes its mempool to <datadir>/mempool.dat when it stops
 * (node/mempool-file.ts) and re-admits them at start; the node here has no peer, so nothing
 * could have re-gossiped them. A hang-up (SIGHUP, told once or twice; a terminal that goes away)
 * stops it as cleanly.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { encodeAddress } from '../../ledger/keys.ts';
import { MEMPOOL_FILE } from '../../node/mempool-file.ts';
import { PEERS_FILE } from '../../node/peer-file.ts';
import { RPC_ENDPOINT_FILE } from '../../node/rpc-types.ts';
import { testKey } from '../helpers/fixtures.ts';
import { CAIRN_MAIN, cairnJson, clusters, DEVNET_ADDRESS, DEVNET_KEY, devnetKeystore, report, secs, signedTransfer, spawnWithFaults, stopProcess, track, waitFor } from '../helpers/cluster.ts';
import { withCompileCache } from '../helpers/compile-cache.ts';
import { scriptArgs } from '../helpers/cli.ts';


/** The hash of the last block a node's log says it connected. */
function lastLoggedHead(lines: string[]): string | undefined {
  const last = lines.at(-1);
  return last === undefined ? undefined : (JSON.parse(last) as { hash: string }).hash;
}

describe('e2e: restart', function () {
  this.timeout(90_000);
  const cluster = clusters();

  it('SIGTERM then start: same head, same pending transactions (persisted to mempool.dat on stop, not re-gossiped)', async () => {
    const started = Date.now();
    const c = cluster({ name: 'restart' });
    const miner = encodeAddress(testKey(700).address);
    const n = c.node('n');

    // A mining node, stopped while it mines: it must come back at the last block it connected.
    await n.start({ coinbase: miner });
    await waitFor('20 blocks', 30_000, async () => (await n.status()).height >= 20);
    const stop1 = await n.stop('SIGTERM');
    assert.deepEqual([stop1.code, stop1.forced], [0, false], 'a clean exit on SIGTERM');
    const loggedHead = lastLoggedHead(n.logLines(/"msg":"(mined|received) block"/));
    await n.start({});
    const afterMining = await n.status();
    assert.equal(afterMining.head, loggedHead, 'resumed at the last block it connected before SIGTERM');

    // Pending transactions in a node that does not mine: five signed here, one by `cairn send`.
    const to = testKey(701).address;
    const ids: string[] = [];
    for (let nonce = 0n; nonce < 5n; nonce++) {
      const tx = signedTransfer(c.params, DEVNET_KEY, to, 1000n + nonce, nonce);
      assert.equal((await n.call('sendRawTransaction', { tx: tx.hex })).id, tx.id);
      ids.push(tx.id);
    }
    const { keystore, passwordFile } = await devnetKeystore(c);
    const sent = await cairnJson<{ id: string }>(['send', '--datadir', n.datadir, '--keystore', keystore, '--password-file', passwordFile, '--from', DEVNET_ADDRESS, '--to', encodeAddress(to), '--amount', '2000', '--fee', '3']);
    ids.push(sent.id);
    const pendingBefore = (await n.call('getMempool', {})).txs.map((t) => t.id).sort();
    assert.deepEqual(pendingBefore, [...ids].sort());
    const head = (await n.status()).head;

    const stopAt = Date.now();
    const stop2 = await n.stop('SIGTERM');
    const stopMs = Date.now() - stopAt;
    assert.deepEqual([stop2.code, stop2.forced], [0, false], 'a clean exit on SIGTERM');
    assert.ok(existsSync(join(n.datadir, MEMPOOL_FILE)), `${MEMPOOL_FILE} written on stop`);

    await n.start({});
    const again = await n.status();
    assert.equal(again.head, head, 'the same head');
    assert.equal(again.peers, 0, 'no peer could have re-gossiped the transactions');
    const pendingAfter = (await n.call('getMempool', {})).txs.map((t) => t.id).sort();
    assert.deepEqual(pendingAfter, pendingBefore, 'the same transactions pending');
    for (const id of ids) assert.equal((await n.call('getTransaction', { id })).status, 'pending');
    assert.equal((await n.call('getAccount', { address: DEVNET_ADDRESS })).nextNonce, '6', 'the next nonce counts them');
    const restored = n.logLines(/"msg":"restored mempool"/).at(-1);
    assert.ok(restored, 'the log says the mempool was restored');
    assert.equal((JSON.parse(restored) as { admitted: number }).admitted, ids.length);

    // They are real: once the node mines again, every one is confirmed.
    await n.restart({ coinbase: miner });
    const confirmed = await waitFor('the restored transactions to be confirmed', 30_000, async () => {
      const all = await Promise.all(ids.map((id) => n.call('getTransaction', { id })));
      return all.every((t) => t.status === 'confirmed') ? all : undefined;
    });
    const account = await n.call('getAccount', { address: encodeAddress(to) });
    assert.equal(account.balance, String(1000 + 1001 + 1002 + 1003 + 1004 + 2000));

    report(`head ${head.slice(0, 12)}… at height ${again.height} kept across SIGTERM (clean stop in ${stopMs} ms, restart in ${n.startMs} ms)`);
    report(`${ids.length} transactions still pending after the restart: persisted to ${MEMPOOL_FILE} on stop and re-admitted at start (no peer to re-gossip them); confirmed ${secs(confirmed.ms)} after mining resumed; scenario ${secs(Date.now() - started)}`);
  });

  it('started again without --bootstrap, it finds the peers it was connected to (peers.json)', async () => {
    // A node knew only its --bootstrap peers and mDNS at each start: once those were gone, a
    // restart left it alone, however many peers it had been connected to.
    const c = cluster({ name: 'peers' });
    const a = await c.node('a').start({});
    const b = await c.node('b').start({ bootstrap: [a.addr] });
    // Its status handshake with a done: a connection counts in `peers` as it opens, and the book
    // notes where a listens only once identify has told it (peer:ready), just before that handshake.
    await waitFor('b connected to a, their statuses exchanged', 30_000, async () => (await b.call('getPeers', {})).some((p) => p.id === a.peerId && p.height !== null) || undefined);
    const stopped = await b.stop('SIGTERM');
    assert.equal(stopped.code, 0);
    const saved = JSON.parse(readFileSync(join(b.datadir, PEERS_FILE), 'utf8')) as { peers: { peer: string; addrs: string[] }[] };
    assert.deepEqual(saved.peers.map((k) => k.peer), [a.peerId], `${PEERS_FILE} names a`);
    await b.start({});
    await waitFor('b connected to a again, with no --bootstrap', 30_000, async () => (await b.status()).peers >= 1 || undefined);
    assert.ok(b.logLines(/"msg":"known peers from before the restart"/).length > 0, 'the log says where it found them');
  });

  it('SIGHUP (a closed terminal or ssh session), even told twice, stops it as cleanly as SIGTERM', async () => {
    // From a review: SIGHUP was left to its default, which ended the node on the spot (no
    // mempool file, rpc.json left behind, the store not closed); and a hang-up reaches a node
    // twice (the terminal's to its foreground group, the shell's or the launcher's to its child).
    const c = cluster({ name: 'hangup' });
    const n = await c.startNode('n');
    const tx = signedTransfer(c.params, DEVNET_KEY, testKey(702).address, 1000n, 0n);
    assert.equal((await n.call('sendRawTransaction', { tx: tx.hex })).id, tx.id);
    // A request whose headers never end holds the RPC server's close for its last second: the
    // second SIGHUP comes while the stop is under way.
    const url = new URL((JSON.parse(readFileSync(join(n.datadir, RPC_ENDPOINT_FILE), 'utf8')) as { url: string }).url);
    const held = connect(Number(url.port), url.hostname);
    held.on('error', () => {});
    await new Promise<void>((resolve) => held.once('connect', () => resolve()));
    held.write('POST / HTTP/1.1\r\nhost: x\r\n');
    const stopped = n.stop('SIGHUP');
    await waitFor('the node to log that it is stopping', 10_000, () => n.logLines(/"msg":"stopping"/).length > 0, 10);
    process.kill(n.pid, 'SIGHUP');
    const result = await stopped;
    held.destroy();
    assert.deepEqual([result.code, result.signal, result.forced], [0, null, false], n.logTail(10));
    assert.equal(n.logLines(/"msg":"stopped"/).length, 1);
    assert.equal(existsSync(join(n.datadir, RPC_ENDPOINT_FILE)), false, 'rpc.json removed');
    await n.start({});
    assert.deepEqual((await n.call('getMempool', {})).txs.map((t) => t.id), [tx.id], 'the pending transaction kept in mempool.dat');
    await n.stop();
  });

  it('SIGTERM during a long store open stops the node after that step: libp2p and the services never start, the store is closed cleanly, exit 0', async () => {
    // From the lifecycle review: a stop asked during the start waited for all of it (libp2p up,
    // the miner started) before it began; a long store open (a scan after a kill, a resumed
    // snapshot install) held a SIGTERM that long. The open is held here until SIGUSR2.
    const c = cluster({ name: 'stop-in-start' });
    const n = c.node('n');
    await n.start({ coinbase: encodeAddress(testKey(703).address) });
    await waitFor('3 blocks', 30_000, async () => (await n.status()).height >= 3);
    await n.stop();

    const args = [CAIRN_MAIN, 'node', '--datadir', n.datadir, '--genesis', c.genesisFile, '--p2p-host', '127.0.0.1', '--p2p-port', '0', '--rpc-port', '0', '--http-port', '0', '--no-mdns'];
    const { child, log, exit } = spawnWithFaults(args, { CAIRN_TEST_HOLD: 'store-open' });
    try {
      await waitFor('the store open to be held', 30_000, () => log().includes('store open held'));
      process.kill(child.pid!, 'SIGTERM');
      await waitFor('the node to log that it is stopping', 10_000, () => log().includes('"msg":"stopping"'), 10).catch((err: Error) => {
        throw new Error(`${err.message}\n${log()}`);
      });
      process.kill(child.pid!, 'SIGUSR2');
      const { value: result } = await waitFor('the node to exit', 30_000, () => Promise.race([exit, new Promise<undefined>((r) => setImmediate(() => r(undefined)))]));
      assert.deepEqual(result, { code: 0, signal: null }, log());
      assert.equal(log().includes('"msg":"node started"'), false, `the start went on past the store open:\n${log()}`);
      assert.equal(log().includes('"msg":"stopped"'), true, log());
      assert.equal(existsSync(join(n.datadir, RPC_ENDPOINT_FILE)), false, 'no rpc.json');
    } finally {
      await stopProcess(child, 'SIGKILL');
    }
    // Closed as a clean stop closes it: the next start reads the tree's top, no scan.
    await n.start({});
    await n.stop();
    assert.equal(n.logLines(/the last stop was not clean/).length, 0, n.logTail(10));
  });

  it('a second SIGINT or SIGTERM while the stop runs ends it at once, with the status of that signal (130, 143)', async () => {
    // From the lifecycle review: a second SIGTERM ended the node with 130, SIGINT's status, which a
    // service manager reads as an interrupt from a terminal.
    const c = cluster({ name: 'twice' });
    for (const [signal, status] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
      const n = await c.startNode(`n-${signal}`);
      // A request whose headers never end holds the RPC server's close: the stop is under way when the second signal comes.
      const url = new URL((JSON.parse(readFileSync(join(n.datadir, RPC_ENDPOINT_FILE), 'utf8')) as { url: string }).url);
      const held = connect(Number(url.port), url.hostname);
      held.on('error', () => {});
      await new Promise<void>((resolve) => held.once('connect', () => resolve()));
      held.write('POST / HTTP/1.1\r\nhost: x\r\n');
      const stopped = n.stop(signal);
      await waitFor('the node to log that it is stopping', 10_000, () => n.logLines(/"msg":"stopping"/).length > 0, 10);
      process.kill(n.pid, signal);
      const result = await stopped;
      held.destroy();
      assert.deepEqual([result.code, result.signal, result.forced], [status, null, false], `${signal}: ${n.logTail(10)}`);
    }
  });

  it('at a terminal that hangs up, it stops cleanly: the log lines that find no terminal are dropped', async () => {
    // From a review: with SIGHUP handled, the first line the stop logged went to a terminal that
    // was gone; the EIO came back as an 'error' event nobody listened to, and ended the node
    // mid-stop (exit 1, rpc.json left, no mempool file). `script` (util-linux) runs the node on a
    // terminal of its own, which its SIGKILL hangs up.
    const c = cluster({ name: 'terminal' });
    const n = c.node('n');
    const command = [process.execPath, CAIRN_MAIN, 'node', '--datadir', n.datadir, '--genesis', n.genesisFile, '--p2p-host', '127.0.0.1', '--p2p-port', '0', '--rpc-port', '0', '--http-port', '0', '--no-mdns'];
    const terminal = spawn('script', scriptArgs(command), { stdio: ['pipe', 'pipe', 'pipe'], env: withCompileCache({ ...process.env, CAIRN_NODE_RUNTIME: 'off' }) });
    track(terminal);
    let screen = '';
    terminal.stdout!.setEncoding('utf8').on('data', (d: string) => (screen += d));
    const { value: pid } = await waitFor('the node to start on its terminal', 30_000, () => {
      if (terminal.exitCode !== null) throw new Error(`script exited with ${terminal.exitCode}: ${screen}`);
      const file = join(n.datadir, RPC_ENDPOINT_FILE);
      return screen.includes('node started') && existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { pid: number }).pid : undefined;
    });
    const alive = () => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    try {
      terminal.kill('SIGKILL');
      await waitFor('the node to end after the hang-up', 20_000, () => !alive());
      assert.equal(existsSync(join(n.datadir, RPC_ENDPOINT_FILE)), false, 'rpc.json removed: the stop ran to its end');
      assert.ok(existsSync(join(n.datadir, MEMPOOL_FILE)), `${MEMPOOL_FILE} written on stop`);
    } finally {
      if (alive()) process.kill(pid, 'SIGKILL');
    }
  });
});
