/**
 * Light clients and proofs, as users run them: a mining `cairn node` process, a forger (a real node
 * in this process whose account proofs are doctored), and `cairn light` processes. A light client
 * that can reach only the forger bans it and proves nothing rather than a wrong balance; one that
 * reaches the honest node proves the balance the node holds. `cairn proof` and `cairn verify`
 * prove the same balance offline, and refuse the file once a byte of its proof is changed. A
 * restart with a --checkpoint its chain contradicts is refused; with one it passes, held.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RpcClient } from '../../cli/rpc-client.ts';
import { LIGHT_RUNTIME } from '../../cli/runtime.ts';
import { encodeAddress } from '../../ledger/keys.ts';
import { proveAccountsAt } from '../../consensus/state-proofs.ts';
import type { LightRpcMethods } from '../../node/light/rpc.ts';
import { decodeGetProofs, encodeProofs } from '../../node/light/wire.ts';
import { RPC_ENDPOINT_FILE, type RpcEndpointFile } from '../../node/rpc-types.ts';
import { tempDir, testKey } from '../helpers/fixtures.ts';
import { libp2pHost, startNode, stopAll, type TestNode } from '../helpers/network.ts';
import { CAIRN_MAIN, DEVNET_KEY, cairn, clusters, exited, report, signedTransfer, stopProcess, track, waitFor } from '../helpers/cluster.ts';
import { withCompileCache } from '../helpers/compile-cache.ts';

/** A `cairn light` process on its own datadir, stopped by pid. */
class LightProc {
  readonly datadir: string;
  child!: ChildProcess;
  rpc!: RpcClient<LightRpcMethods>;
  log = '';

  constructor(datadir: string) {
    this.datadir = datadir;
  }

  async start(genesisFile: string, bootstrap: readonly string[], more: readonly string[] = []): Promise<this> {
    const args = [CAIRN_MAIN, 'light', '--datadir', this.datadir, '--genesis', genesisFile, '--p2p-host', '127.0.0.1', '--rpc-port', '0', '--no-mdns', '--log-level', 'debug', ...more];
    for (const b of bootstrap) args.push('--bootstrap', b);
    this.child = spawn(process.execPath, args, { env: withCompileCache(), stdio: ['ignore', 'pipe', 'pipe'] });
    track(this.child);
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => (this.log += d));
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.log += d));
    await waitFor('the light client to serve RPC', 30_000, async () => {
      if (exited(this.child)) throw new Error(`cairn light exited: ${this.log}`);
      const file = join(this.datadir, RPC_ENDPOINT_FILE);
      if (!existsSync(file)) return undefined;
      const endpoint = JSON.parse(readFileSync(file, 'utf8')) as RpcEndpointFile;
      if (endpoint.pid !== this.child.pid) return undefined;
      this.rpc = new RpcClient<LightRpcMethods>(endpoint.url, endpoint.token);
      return this.rpc.call('status', {});
    });
    return this;
  }

  async stop(): Promise<void> {
    if (this.child) await stopProcess(this.child);
  }
}

describe('e2e: light clients and proofs', function () {
  this.timeout(120_000);
  const cluster = clusters();
  const lights: LightProc[] = [];
  let forger: TestNode | undefined;
  let dir: ReturnType<typeof tempDir> | undefined;

  after(async () => {
    for (const l of lights) await l.stop();
    await stopAll([forger]);
    dir?.remove();
  });

  it('a light client proves balances from an honest node, and bans a node that serves a forged proof', async () => {
    const c = cluster({ name: 'light' });
    dir = tempDir('cairn-e2e-light-');
    const miner = await c.startNode('miner', { coinbase: encodeAddress(testKey(700).address) });
    const payee = testKey(701).address;
    const payeeText = encodeAddress(payee);
    await waitFor('a few blocks', 30_000, async () => (await miner.status()).height >= 3);
    const tx = signedTransfer(c.params, DEVNET_KEY, payee, 123_456_789n, 0n);
    await miner.call('sendRawTransaction', { tx: tx.hex });
    await waitFor('the payment mined', 30_000, async () => (await miner.call('getTransaction', { id: tx.id })).status === 'confirmed');

    // The forger: a real node of the same network whose proofs claim ten times the balance.
    forger = await startNode(c.params, [miner.addr]);
    const node = forger.node;
    await waitFor('the forger synced', 30_000, async () => node.chain.tip.height >= (await miner.status()).height - 1);
    await libp2pHost(node).unhandle(node.names.proofs);
    await node.transport.handle(
      node.names.proofs,
      async (req) => {
        const { addresses } = decodeGetProofs(req);
        const proofs = (await proveAccountsAt(node.chain, node.chain.tip, addresses, 16)) as Uint8Array[];
        return encodeProofs({ kind: 'proofs', proofs: proofs.map((p) => p.map((b, i) => (i === p.length - 12 ? b ^ 0x10 : b))) });
      },
      { timeoutMs: 10_000, maxBytes: 4096, onBadRequest: () => {} },
    );

    // A light client that knows both: it asks every peer that has its tip, and only one tells the truth.
    const client = await new LightProc(join(dir.path, 'light')).start(c.genesisFile, [forger.addr, miner.addr]);
    lights.push(client);
    // It runs with a light client's memory settings (cli/runtime.ts re-executes it with them, same
    // pid): under Node's defaults it held ~300 MB for a million headers, and under the node's it
    // grew by 51 MB, not the < 50 MB it promises.
    assert.equal(process.env.MALLOC_ARENA_MAX, undefined, 'the test itself runs with the defaults');
    const environ = readFileSync(`/proc/${client.child.pid}/environ`, 'utf8').split('\0');
    assert.ok(environ.includes('MALLOC_ARENA_MAX=2'), 'cairn light re-executed with the runtime settings');
    const cmdline = readFileSync(`/proc/${client.child.pid}/cmdline`, 'utf8').split('\0');
    for (const flag of LIGHT_RUNTIME.v8Flags) assert.ok(cmdline.includes(flag), `cairn light runs with ${flag}: ${cmdline.join(' ')}`);
    const started = Date.now();
    await waitFor('the light client on the chain, with both peers', 30_000, async () => {
      const s = await client.rpc.call('status', {});
      return s.height >= 3 && s.peers >= 2;
    });
    // The light client asks the peers that have its tip. The miner keeps mining, so the forger may
    // be a block behind when asked (then it is not asked at all): asked again, a bounded number of
    // times, every answer must hold, and the forger must be found out the first time it answers.
    let light: { balance: string; exists: boolean; block: { height: number }; provenBy: string } | undefined;
    let banned: { peer: string; reason: string }[] = [];
    for (let attempt = 0; attempt < 10 && banned.length === 0; attempt++) {
      const proven = await cairn(['account', payeeText, '--light', '--datadir', client.datadir, '--json']);
      assert.equal(proven.code, 0, proven.stderr);
      light = JSON.parse(proven.stdout) as NonNullable<typeof light>;
      const full = await miner.call('getAccount', { address: payeeText });
      assert.equal(light.balance, '123456789');
      assert.equal(light.balance, full.balance);
      assert.equal(light.exists, true);
      assert.equal(light.provenBy, miner.peerId);
      banned = (await client.rpc.call('status', {})).banned;
    }
    assert.ok(light);
    assert.deepEqual(banned.map((b) => b.peer), [node.transport.peerId], 'the forger, and only the forger, banned');
    assert.match(banned[0]!.reason, /proof that does not hold/);
    const human = await cairn(['account', payeeText, '--light', '--datadir', client.datadir]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /balance\s+1\.23456789 CRN/);
    assert.match(human.stdout, /proven at\s+height \d+/);
    report(`light client: synced and proven in ${Date.now() - started} ms at height ${light.block.height}; the forger banned: ${banned[0]!.reason}`);

    // Offline: a proof file from the node, checked with no node at all.
    const file = await cairn(['proof', 'account', payeeText, '--datadir', miner.datadir]);
    assert.equal(file.code, 0, file.stderr);
    const path = join(dir.path, 'proof.json');
    writeFileSync(path, file.stdout);
    const verified = await cairn(['verify', path, '--genesis', c.genesisFile]);
    assert.equal(verified.code, 0, verified.stderr);
    assert.match(verified.stdout, new RegExp(`proven: ${payeeText}: balance 1\\.23456789 CRN, nonce 0, at height \\d+, \\d+ confirmations?`));
    assert.match(verified.stdout, /checked: \d+ headers from genesis \(links, proof of work, ASERT targets, timestamps\)/);
    const parsed = JSON.parse(file.stdout) as { proof: string };
    const flipped = parsed.proof.slice(0, -4) + ((parseInt(parsed.proof.slice(-4, -2), 16) ^ 1).toString(16).padStart(2, '0')) + parsed.proof.slice(-2);
    writeFileSync(path, JSON.stringify({ ...parsed, proof: flipped }));
    const tampered = await cairn(['verify', path, '--genesis', c.genesisFile]);
    assert.equal(tampered.code, 1);
    assert.match(tampered.stderr, /not proven|does not hold/);

    // A hang-up (a closed terminal or ssh session) stops it cleanly, as cairn node: its default
    // ended the process on the spot, the datadir's rpc.json and lock left behind.
    const exit = new Promise<number | null>((resolve) => client.child.once('exit', (code) => resolve(code)));
    client.child.kill('SIGHUP');
    assert.equal(await exit, 0, client.log);
    assert.match(client.log, /SIGHUP/);
    assert.match(client.log, /stopped/);
    assert.equal(existsSync(join(client.datadir, RPC_ENDPOINT_FILE)), false, 'rpc.json removed at the clean stop');

    // A checkpoint its chain contradicts: refused, naming the block there; one it passes: held.
    const second = await miner.call('getBlock', { height: 2 });
    const wrong = await cairn(['light', '--datadir', client.datadir, '--bootstrap', miner.addr, '--rpc-port', '0', '--no-mdns', '--checkpoint', `2:${'0'.repeat(64)}`]);
    assert.equal(wrong.code, 1, wrong.stderr);
    assert.match(wrong.stderr, new RegExp(`^cairn: the light client's chain in \\S+ has block ${second.hash} at height 2, not the checkpoint's 0{64}: `));
    const pinned = await new LightProc(client.datadir).start(c.genesisFile, [miner.addr], ['--checkpoint', `2:${second.hash}`]);
    lights.push(pinned);
    assert.deepEqual((await pinned.rpc.call('status', {})).checkpoint, { height: 2, hash: second.hash, passed: true });
    const status = await cairn(['status', '--datadir', client.datadir]);
    assert.match(status.stdout, new RegExp(`^checkpoint +2:${second.hash} \\(its chain passes through it\\)$`, 'm'));
  });
});
