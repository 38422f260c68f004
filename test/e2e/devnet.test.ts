/**
 * `cairn devnet` as a user runs it at a terminal: its nodes stop cleanly on one Ctrl-C, and a
 * second devnet on the same directory says which node could not start and why, instead of
 * reporting the first devnet's nodes as its own.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { join } from 'node:path';
import type { RpcEndpointFile } from '../../node/rpc-types.ts';
import { tempDir } from '../helpers/fixtures.ts';
import { CAIRN_MAIN, REPO, runCli, waitFor, writeTestGenesis } from '../helpers/cli.ts';
import { withCompileCache } from '../helpers/compile-cache.ts';

interface Row {
  readonly name: string;
  readonly datadir: string;
  readonly rpc: string;
  readonly explorer: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function kill(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** The pids the nodes under a devnet's directory wrote in their rpc.json. */
function pidsOfNodes(root: string): number[] {
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .map((name) => join(root, name, 'rpc.json'))
    .filter((file) => existsSync(file))
    .map((file) => (JSON.parse(readFileSync(file, 'utf8')) as RpcEndpointFile).pid);
}

/** The messages of a node.log's JSON records, in order. */
function messages(log: string): string[] {
  return readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => String((JSON.parse(l) as { msg: unknown }).msg));
}

describe('e2e: cairn devnet', function () {
  this.timeout(120_000);
  const dir = tempDir('cairn-e2e-devnet-');
  const root = join(dir.path, 'dn');
  let genesis = '';
  let devnet: ChildProcess | undefined;
  let stdout = '';
  let stderr = '';
  let rows: Row[] = [];
  const nodePids: number[] = [];

  before(async function () {
    this.timeout(90_000);
    genesis = writeTestGenesis(dir.path, 'cairn-e2e-devnet');
    // Its own process group, as a terminal gives a job: the group a Ctrl-C is sent to.
    devnet = spawn(process.execPath, [CAIRN_MAIN, 'devnet', '--nodes', '2', '--datadir', root, '--genesis', genesis, '--json'], { cwd: REPO, env: withCompileCache(), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const started = devnet;
    try {
      setPriority(started.pid!, 10); // the miner leaves the CPU to the rest
    } catch {
      // only slower
    }
    started.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    started.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const printed = await waitFor('the devnet to print its nodes', async () => {
      if (started.exitCode !== null) return { exited: started.exitCode, rows: undefined };
      try {
        return { exited: null, rows: JSON.parse(stdout) as Row[] };
      } catch {
        return undefined;
      }
    }, 80_000);
    if (printed.rows === undefined) throw new Error(`cairn devnet exited with status ${printed.exited}: ${stderr}`);
    rows = printed.rows;
    for (const r of rows) nodePids.push((JSON.parse(readFileSync(join(r.datadir, 'rpc.json'), 'utf8')) as RpcEndpointFile).pid);
  });

  after(async () => {
    // The nodes run in groups of their own: they outlive a devnet killed outright, and a before
    // hook that failed has not learnt their pids. So the devnet is stopped as a user stops it, by
    // a Ctrl-C, which stops its nodes (even one still starting); then whatever is left, by pid.
    const running = devnet && devnet.exitCode === null && devnet.signalCode === null ? devnet : undefined;
    if (running?.pid !== undefined) {
      const closed = new Promise((r) => running.once('close', r));
      kill(-running.pid, 'SIGINT');
      await waitFor('the devnet to stop its nodes', async () => (running.exitCode === null && running.signalCode === null ? undefined : true), 30_000).catch(() => kill(running.pid!, 'SIGKILL'));
      await closed;
    }
    const pids = [...nodePids, ...pidsOfNodes(root)];
    for (const pid of pids) kill(pid, 'SIGKILL');
    await waitFor('the nodes to be gone', async () => (pids.some(alive) ? undefined : true), 10_000);
    dir.remove();
  });

  it('a second devnet on the same directory is refused before it starts a node, naming the pid holding it and the way out; exit 1', async () => {
    assert.equal(rows.length, 2);
    const first = rows[0]!;
    const r = await runCli(['devnet', '--nodes', '2', '--datadir', root, '--genesis', genesis], { timeoutMs: 60_000 });
    const context = `status ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
    assert.equal(r.code, 1, context);
    assert.equal(r.stdout, '', context);
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, context);
    // From a newcomer's first hour: each node was refused on its own, with "cairn stop --datadir
    // DIR/node-0", which stopped one node of the first devnet and let the second fail on node-1.
    assert.equal(lines[0], `cairn: ${root} is in use by another devnet (its node-0 runs as pid ${nodePids[0]}): stop it first (Ctrl-C where it runs), or give this one another --datadir`);
    assert.doesNotMatch(readFileSync(join(first.datadir, 'node.log'), 'utf8'), /^cairn: /m, 'no second node was started on it (one would have been refused there)');
    // The first devnet did not notice.
    assert.equal(devnet!.exitCode, null);
    for (const [i, row] of rows.entries()) {
      assert.equal((JSON.parse(readFileSync(join(row.datadir, 'rpc.json'), 'utf8')) as RpcEndpointFile).pid, nodePids[i]);
      assert.ok(alive(nodePids[i]!));
    }
  });

  it("each node's explorer is printed with it, and answers: on a free port, which only the node's log told", async () => {
    // From a newcomer's first hour: the devnet printed rpc and p2p, and the explorer of each
    // node (--http-port 0) was nowhere but in its node.log.
    for (const row of rows) {
      assert.match(row.explorer, /^http:\/\/127\.0\.0\.1:\d+\/$/, row.name);
      const page = await fetch(row.explorer);
      assert.equal(page.status, 200, row.name);
      assert.match(await page.text(), /<title>Cairn explorer<\/title>/, row.name);
    }
  });

  it('Ctrl-C (SIGINT to the terminal\'s process group) stops every node once, cleanly: "stopped" logged, rpc.json removed, mempool and bans saved', async () => {
    assert.ok(devnet?.pid);
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => devnet!.once('close', (code, signal) => r({ code, signal })));
    process.kill(-devnet.pid, 'SIGINT');
    assert.deepEqual(await exited, { code: 0, signal: null }, stderr);
    // Said while it takes its seconds, not a silent terminal after the Ctrl-C.
    assert.deepEqual(stderr.trimEnd().split('\n').slice(-2), ['cairn: stopping the 2 nodes (Ctrl-C again stops them at once)', 'cairn: stopped the 2 nodes'], stderr);
    for (const [i, row] of rows.entries()) {
      assert.equal(alive(nodePids[i]!), false, `${row.name} is gone`);
      const said = messages(join(row.datadir, 'node.log'));
      assert.equal(said.at(-1), 'stopped', `${row.name}'s log ends: ${said.slice(-3).join(' | ')}`);
      assert.equal(said.filter((m) => m === 'stopping').length, 1, `${row.name} was told to stop once`);
      assert.equal(existsSync(join(row.datadir, 'rpc.json')), false, row.name);
      assert.ok(existsSync(join(row.datadir, 'mempool.dat')), `${row.name} saved its mempool`);
      assert.ok(existsSync(join(row.datadir, 'bans.json')), `${row.name} saved its bans`);
    }
  });
});

describe('e2e: cairn devnet whose stderr has gone', function () {
  this.timeout(120_000);
  const dir = tempDir('cairn-e2e-devnet-pipe-');
  const root = join(dir.path, 'dn');
  let devnet: ChildProcess | undefined;
  const nodePids: number[] = [];

  after(async () => {
    const running = devnet && devnet.exitCode === null && devnet.signalCode === null ? devnet : undefined;
    if (running?.pid !== undefined) kill(-running.pid, 'SIGKILL');
    const pids = [...nodePids, ...pidsOfNodes(root)];
    for (const pid of pids) kill(pid, 'SIGKILL');
    await waitFor('the nodes to be gone', async () => (pids.some(alive) ? undefined : true), 10_000);
    dir.remove();
  });

  it('a node that exits is told to nobody, and the devnet goes on: Ctrl-C still stops the others, none left running', async () => {
    // `cairn devnet 2>&1 | head`, once head has quit: the line saying a node exited met EPIPE,
    // an 'error' event nobody handled, and the devnet died on it, its other nodes (each in a
    // process group of its own) left running with nobody to stop them.
    const genesis = writeTestGenesis(dir.path, 'cairn-e2e-devnet-pipe');
    devnet = spawn(process.execPath, [CAIRN_MAIN, 'devnet', '--nodes', '2', '--datadir', root, '--genesis', genesis, '--json'], { cwd: REPO, env: withCompileCache(), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const started = devnet;
    started.stderr!.destroy(); // the reader has gone
    let stdout = '';
    started.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => started.once('close', (code, signal) => r({ code, signal })));
    const rows = await waitFor('the devnet to print its nodes', async () => {
      if (started.exitCode !== null) throw new Error(`cairn devnet exited with status ${started.exitCode}`);
      try {
        return JSON.parse(stdout) as Row[];
      } catch {
        return undefined;
      }
    }, 80_000);
    for (const r of rows) nodePids.push((JSON.parse(readFileSync(join(r.datadir, 'rpc.json'), 'utf8')) as RpcEndpointFile).pid);
    const stop = await runCli(['stop', '--datadir', rows[1]!.datadir], { timeoutMs: 30_000 });
    assert.equal(stop.code, 0, stop.stderr);
    // Gone, so reaped by the devnet: its 'exit' was handled, and the line about it written, in that turn.
    await waitFor('node-1 to be gone', async () => (alive(nodePids[1]!) ? undefined : true), 30_000);
    kill(-started.pid!, 'SIGINT');
    assert.deepEqual(await exited, { code: 0, signal: null });
    await waitFor('node-0 to be stopped by the devnet', async () => (alive(nodePids[0]!) ? undefined : true), 30_000);
    assert.equal(messages(join(rows[0]!.datadir, 'node.log')).at(-1), 'stopped');
  });
});
