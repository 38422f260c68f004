/**
 * A port another program holds refuses a node's start before anything else is done: no datadir
 * made, no store opened, no password asked for a coinbase key the node would never use. A port
 * held by the node running on the same datadir names that node, as the datadir's lock did. A
 * bootstrap address with the node's own peer id (a copied datadir) is refused, with the fix. A light
 * client (`cairn light`) keeps a peer key and ports too, and is held to the same.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:net';
import { join } from 'node:path';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { initDatadir } from '../cli/datadir.ts';
import { LevelKv } from '../ledger/kv-level.ts';
import { loadOrCreatePeerKey } from '../node/libp2p/identity.ts';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { tempDir } from './helpers/fixtures.ts';
import { REPO, closedPort, holdPort, killAll, runCli, spawnCli, stopChild, waitFor, type CliChild, type CliResult } from './helpers/cli.ts';

const NODE_FLAGS = ['--p2p-host', '127.0.0.1', '--no-mdns', '--log-level', 'warn'];

function lastLine(r: CliResult): { code: number | null; line: string } {
  return { code: r.code, line: r.stderr.trimEnd().split('\n').at(-1)! };
}

describe('start errors found before the datadir is touched: a port in use, a bootstrap peer that is this node', function () {
  this.timeout(60_000);
  const dir = tempDir('cairn-start-errors-');
  const held: Server[] = [];
  let node: CliChild | undefined;
  after(async () => {
    if (node) await stopChild(node, 10_000);
    await killAll();
    for (const s of held) s.close();
    dir.remove();
  });

  it('a P2P, RPC, HTTP or metrics port in use: the usual error, and no datadir made, no coinbase password asked', async () => {
    const ports = { p2p: await holdPort(), rpc: await holdPort(), http: await holdPort(), metrics: await holdPort() };
    held.push(...Object.values(ports).map((p) => p.server));
    const free = { p2p: '0', rpc: '0', http: '0', metrics: undefined as string | undefined };
    const flags = (which: keyof typeof ports) => {
      const given = { ...free, [which]: String(ports[which].port) };
      return ['--p2p-port', given.p2p, '--rpc-port', given.rpc, '--http-port', given.http, ...(given.metrics ? ['--metrics-port', given.metrics] : [])];
    };
    const names = { p2p: 'P2P port', rpc: 'RPC port', http: 'HTTP port', metrics: 'metrics port' };
    const what = { p2p: '', rpc: '', http: ' (explorer and REST API)', metrics: ' (Prometheus)' };
    const runs = await Promise.all((Object.keys(ports) as (keyof typeof ports)[]).map(async (which) => {
      const datadir = join(dir.path, which);
      // --mine without a key or a password: the password would have been asked (and refused here,
      // with no terminal) before the port was tried.
      return { which, datadir, r: await runCli(['node', '--datadir', datadir, '--mine', ...flags(which), ...NODE_FLAGS]) };
    }));
    for (const { which, datadir, r } of runs) {
      const port = ports[which].port;
      assert.deepEqual(lastLine(r), { code: 1, line: `cairn: ${names[which]} ${port}${what[which]} is already in use (another cairn node?): choose another with --${which}-port N, or --${which}-port 0 for any free port` }, r.stderr);
      assert.equal(existsSync(datadir), false, `${which}: ${datadir} was made`);
    }
  });

  it('several ports in use (a second node beside the first, on the defaults): all named in one refusal, not one per failed start', async () => {
    const ports = [await holdPort(), await holdPort(), await holdPort()];
    held.push(...ports.map((p) => p.server));
    const [p2p, rpc, http] = ports.map((p) => p.port);
    const datadir = join(dir.path, 'second');
    const r = await runCli(['node', '--datadir', datadir, '--p2p-port', String(p2p), '--rpc-port', String(rpc), '--http-port', String(http), ...NODE_FLAGS]);
    assert.deepEqual(lastLine(r), { code: 1, line: `cairn: P2P port ${p2p}, RPC port ${rpc} and HTTP port ${http} (explorer and REST API) are already in use (another cairn node?): choose others with --p2p-port N, --rpc-port N and --http-port N, or 0 for any free port` }, r.stderr);
    assert.equal(existsSync(datadir), false);
  });

  it('the ports of the node running on the same datadir: names that node and cairn stop, as its lock does', async () => {
    const datadir = join(dir.path, 'running');
    node = spawnCli(['node', '--datadir', datadir, '--p2p-port', '0', '--rpc-port', '0', '--http-port', '0', ...NODE_FLAGS]);
    const started = node;
    const endpoint = await waitFor('the node to write rpc.json', async () => {
      if (started.child.exitCode !== null) throw new Error(`the node exited: ${started.stderr()}`);
      const file = join(datadir, 'rpc.json');
      return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { url: string; pid: number }) : undefined;
    }, 40_000);
    const rpcPort = new URL(endpoint.url).port;
    const r = await runCli(['node', '--datadir', datadir, '--p2p-port', '0', '--rpc-port', rpcPort, '--http-port', '0', ...NODE_FLAGS]);
    assert.deepEqual(lastLine(r), { code: 1, line: `cairn: the datadir ${datadir} is in use by the cairn node with pid ${endpoint.pid}: stop it first (cairn stop --datadir ${datadir}), or give this one another --datadir` });
    assert.equal(started.child.exitCode, null);
  });

  it('a mining node on a datadir another process holds makes no coinbase key: two started together leave one', async () => {
    // From a crash-safety review: the key was made before the store's lock was taken. Two
    // `cairn node --mine` on a new datadir each made one, the second was then refused the store,
    // and every later start was refused for a keystore of two keys.
    const datadir = join(dir.path, 'held');
    await initDatadir(datadir);
    const password = join(dir.path, 'held-password');
    writeFileSync(password, 'pw\n', { mode: 0o600 });
    const other = await LevelKv.open(join(datadir, 'chain')); // the node that won, still starting
    try {
      const r = await runCli(['node', '--datadir', datadir, '--mine', '--password-file', password, '--p2p-port', '0', '--rpc-port', '0', '--http-port', '0', ...NODE_FLAGS]);
      // The holder is this test's process, named by its pid where the system lists locks (Linux).
      const by = process.platform === 'linux' ? `another process with pid ${process.pid}: wait for it or stop it (kill ${process.pid})` : 'another process (a node still starting, or cairn init): wait for it or stop it';
      assert.deepEqual(lastLine(r), { code: 1, line: `cairn: the datadir ${datadir} is in use by ${by}, or give this one another --datadir` });
      assert.equal(existsSync(join(datadir, 'keystore')), false, `a key was made: ${r.stdout}`);
    } finally {
      await other.close();
    }
  });

  it('a --bootstrap naming this datadir\'s own peer id (a copied datadir): refused at once with the fix, not dropped without a word', async () => {
    const datadir = join(dir.path, 'copy');
    await initDatadir(datadir);
    const key = await loadOrCreatePeerKey(datadir);
    const id = peerIdFromPrivateKey(key).toString();
    const address = `/ip4/127.0.0.1/tcp/${await closedPort()}/p2p/${id}`;
    const before = readFileSync(join(datadir, 'p2p-key'));
    const r = await runCli(['node', '--datadir', datadir, '--bootstrap', address, '--p2p-port', '0', '--rpc-port', '0', '--http-port', '0', ...NODE_FLAGS], { timeoutMs: 20_000 });
    const keyFile = join(datadir, 'p2p-key');
    assert.deepEqual(lastLine(r), { code: 1, line: `cairn: --bootstrap ${address} names this node's own peer id, ${id} (its key is ${keyFile}): if that is this node's address, leave it out; if ${datadir} is a copy of that node's datadir, the two have one identity and cannot connect: with this node stopped, delete ${keyFile} (the next start makes a new one)` });
    assert.deepEqual(readFileSync(keyFile), before);
  });
  it("a --bootstrap list of every seed, this node's own among them: its own left out with a warning, and the node starts", async () => {
    // From the review of this stop's diff: one list given to every seed names each one itself, and
    // refusing the start for it broke such deployments on upgrade; libp2p had skipped the address.
    const datadir = join(dir.path, 'seed');
    await initDatadir(datadir);
    const id = peerIdFromPrivateKey(await loadOrCreatePeerKey(datadir)).toString();
    const ownAddress = `/ip4/127.0.0.1/tcp/${await closedPort()}/p2p/${id}`;
    const other = `/ip4/127.0.0.1/tcp/${await closedPort()}/p2p/12D3KooWGq2cz1Hf4G2bMXRDeEcvyrPkXV5ysPpQtFMmvFjfpw6Q`;
    const seed = spawnCli(['node', '--datadir', datadir, '--bootstrap', ownAddress, '--bootstrap', other, '--p2p-port', '0', '--rpc-port', '0', '--http-port', '0', ...NODE_FLAGS]);
    node = seed;
    await waitFor('the node to start', async () => {
      if (seed.child.exitCode !== null) throw new Error(`the node exited: ${seed.stderr()}`);
      return existsSync(join(datadir, 'rpc.json')) || undefined;
    }, 40_000);
    assert.match(seed.stdout() + seed.stderr(), new RegExp(`--bootstrap ${ownAddress} names this node's own peer id, ${id}: left out`));
    await stopChild(seed, 10_000);
    node = undefined;
  });

  it('cairn light too: a P2P or RPC port in use refuses the start with no datadir made; a --bootstrap with its own peer id is refused with the fix', async () => {
    const other = `/ip4/127.0.0.1/tcp/${await closedPort()}/p2p/${peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()}`;
    const ports = { p2p: await holdPort(), rpc: await holdPort() };
    held.push(ports.p2p.server, ports.rpc.server);
    const names = { p2p: 'P2P port', rpc: 'RPC port' };
    for (const which of ['p2p', 'rpc'] as const) {
      const datadir = join(dir.path, `light-${which}`);
      const given = { p2p: '0', rpc: '0', [which]: String(ports[which].port) };
      const r = await runCli(['light', '--datadir', datadir, '--bootstrap', other, '--p2p-port', given.p2p, '--rpc-port', given.rpc, ...NODE_FLAGS], { timeoutMs: 20_000 });
      const port = ports[which].port;
      assert.deepEqual(lastLine(r), { code: 1, line: `cairn: ${names[which]} ${port} is already in use (another cairn node?): choose another with --${which}-port N, or --${which}-port 0 for any free port` }, r.stderr);
      assert.equal(existsSync(datadir), false, `${which}: ${datadir} was made`);
    }

    const datadir = join(dir.path, 'light-copy');
    mkdirSync(datadir);
    const id = peerIdFromPrivateKey(await loadOrCreatePeerKey(datadir)).toString();
    const address = `/ip4/127.0.0.1/tcp/${await closedPort()}/p2p/${id}`;
    const keyFile = join(datadir, 'p2p-key');
    const r = await runCli(['light', '--datadir', datadir, '--bootstrap', address, '--p2p-port', '0', '--rpc-port', '0', ...NODE_FLAGS], { timeoutMs: 20_000 });
    assert.deepEqual(lastLine(r), { code: 1, line: `cairn: --bootstrap ${address} names this light client's own peer id, ${id} (its key is ${keyFile}): if that is this light client's address, leave it out; if ${datadir} is a copy of that node's datadir, the two have one identity and cannot connect: with this light client stopped, delete ${keyFile} (the next start makes a new one)` });

    // Its own address among others, as one list given to every node: left out with a word, and it starts.
    const light = spawnCli(['light', '--datadir', datadir, '--bootstrap', address, '--bootstrap', other, '--p2p-port', '0', '--rpc-port', '0', ...NODE_FLAGS]);
    node = light;
    await waitFor('the light client to start', async () => {
      if (light.child.exitCode !== null) throw new Error(`the light client exited: ${light.stderr()}`);
      return existsSync(join(datadir, 'rpc.json')) || undefined;
    }, 40_000);
    assert.match(light.stdout() + light.stderr(), new RegExp(`--bootstrap ${address} names this light client's own peer id, ${id}: left out`));
    await stopChild(light, 10_000);
    node = undefined;
  });
});

describe('a full disk at start: an error of its own, with the fix, never "corrupt"', function () {
  this.timeout(60_000);
  const dir = tempDir('cairn-disk-full-');
  const injector = join(REPO, 'test', 'helpers', 'fault-injector.ts');
  after(async () => {
    await killAll();
    dir.remove();
  });

  it("the store's open, or a file beside it (rpc.json): says the disk is full, to free space, and that nothing is damaged", async () => {
    // From a crash-safety review: LevelDB's open said STORE_CORRUPT ("No space left on device" in
    // its text), and an operator told "corrupt" may delete a store that is whole; a file beside
    // it came out in Node's words, "ENOSPC: no space left on device, write".
    const datadir = join(dir.path, 'full');
    await initDatadir(datadir);
    const start = (full: string) =>
      runCli(['node', '--datadir', datadir, '--p2p-port', '0', '--rpc-port', '0', '--http-port', '0', ...NODE_FLAGS], { env: { NODE_OPTIONS: `--import=${injector}`, CAIRN_TEST_DISK_FULL: full } });
    const store = join(datadir, 'chain');
    assert.deepEqual(lastLine(await start('store')), {
      code: 1,
      line: `cairn: the disk holding the database at ${store} is full (IO error: ${store}/MANIFEST-000001: No space left on device): free some space on it; nothing in the database is damaged`,
    });
    assert.deepEqual(lastLine(await start('rpc.json')), {
      code: 1,
      line: `cairn: the disk holding ${datadir} is full (ENOSPC: no space left on device, write): free some space on it and start again; nothing in the datadir is damaged`,
    });
    assert.deepEqual(readdirSync(datadir).filter((name) => name.startsWith('rpc.json')), [], 'no rpc.json, whole or part');
  });
});

