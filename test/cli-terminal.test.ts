/**
 * cairn at a terminal, as a newcomer meets it. The password prompt names the key the password is
 * for: a bare "Password:" came right after "initialised datadir" on a node's first start, and
 * before a transfer from one of several keys. The sync progress bar leaves its line to a log
 * record: Ctrl-C during a sync wrote "stopping" on the end of the bar, and then drew the bar again
 * below it; the bar itself (no rate before one is measured) is tested on a recorded stream. `script` (util-linux) gives
 * each command a terminal of its own, as in test/e2e/restart.test.ts.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir, testKey } from './helpers/fixtures.ts';
import { withCompileCache } from './helpers/compile-cache.ts';
import { encodeAddress } from '../ledger/keys.ts';
import { generateDatadir } from '../cli/cmd-generate.ts';
import { ProgressBar } from '../cli/progress.ts';
import { CAIRN_MAIN, DEVNET_ADDRESS, DEVNET_PRIVATE_KEY, REPO, cliJson, killAll, runCli, scriptArgs, spawnCli, stopChild, waitFor, type CliChild } from './helpers/cli.ts';

interface Terminal {
  /** What the command wrote to its terminal so far. */
  screen(): string;
  /** Types `line` and Enter. */
  type(line: string): void;
  readonly process: ChildProcess;
  readonly exited: Promise<number | null>;
}

/** Every terminal a test opened, killed in its after hook if still running. */
const terminals: Terminal[] = [];

/** `cairn ARGS` on a terminal of its own, without the password variables of this environment. */
function atTerminal(args: readonly string[]): Terminal {
  const env = withCompileCache({ ...process.env, CAIRN_NODE_RUNTIME: 'off' });
  delete env['CAIRN_PASSWORD'];
  delete env['CAIRN_RPC_TOKEN'];
  const child = spawn('script', scriptArgs([process.execPath, CAIRN_MAIN, ...args]), { cwd: REPO, env, stdio: ['pipe', 'pipe', 'pipe'] });
  let screen = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (screen += d));
  const exited = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
  const t = { screen: () => screen, type: (line: string) => void child.stdin!.write(line + '\r'), process: child, exited };
  terminals.push(t);
  return t;
}

/** Waits until the terminal shows `text`, failing at once if the command has ended. */
const shows = (t: Terminal, text: string | RegExp) =>
  waitFor(`the terminal to show ${text}`, async () => {
    if (typeof text === 'string' ? t.screen().includes(text) : text.test(t.screen())) return true;
    if (t.process.exitCode !== null) return false;
    return undefined;
  }, 30_000, 50).then((shown) => assert.ok(shown, `the command ended without showing ${text}:\n${t.screen()}`));

/** Kills what is left of the terminals, and `pids` (their nodes), by pid. */
function killTerminals(pids: readonly (number | undefined)[]): void {
  for (const t of terminals.splice(0)) if (t.process.exitCode === null) t.process.kill('SIGKILL');
  for (const pid of pids) {
    if (pid === undefined) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // stopped
    }
  }
}

describe('cairn at a terminal: the password prompt names the key', function () {
  this.timeout(60_000);
  const dir = tempDir('cairn-cli-prompt-');
  const datadir = join(dir.path, 'data');
  const keystore = join(dir.path, 'keys');
  let nodePid: number | undefined;

  after(async () => {
    if (nodePid !== undefined) await runCli(['stop', '--datadir', datadir]);
    killTerminals([nodePid]);
    dir.remove();
  });

  it("a node's first start with --mine asks for the password of the new coinbase key, and says so", async () => {
    const node = atTerminal(['node', '--mine', '--datadir', datadir, '--p2p-host', '127.0.0.1', '--p2p-port', '0', '--rpc-port', '0', '--http-port', '0', '--no-mdns']);
    await shows(node, `Password for the new coinbase key in ${join(datadir, 'keystore')}: `);
    node.type('pw');
    await shows(node, 'Repeat password: ');
    node.type('pw');
    await shows(node, 'node started');
    nodePid = (JSON.parse(readFileSync(join(datadir, 'rpc.json'), 'utf8')) as { pid: number }).pid;
  });

  it('a transfer asks for the password of the key it sends from, by its address', async () => {
    writeFileSync(join(dir.path, 'password'), 'pw\n', { mode: 0o600 });
    writeFileSync(join(dir.path, 'devkey.hex'), DEVNET_PRIVATE_KEY + '\n');
    await cliJson(['keys', 'import', '--keystore', keystore, '--password-file', join(dir.path, 'password'), join(dir.path, 'devkey.hex')]);
    const send = atTerminal(['send', '--datadir', datadir, '--keystore', keystore, '--from', DEVNET_ADDRESS, '--to', encodeAddress(testKey(9).address), '--amount', '1']);
    await shows(send, `Password for ${DEVNET_ADDRESS}: `);
    send.type('pw');
    assert.equal(await send.exited, 0, send.screen());
    assert.match(send.screen(), /^[0-9a-f]{64}\r?$/m);
    assert.ok(existsSync(join(datadir, 'rpc.json')));
  });
});

describe('cairn node at a terminal: Ctrl-C during a sync', function () {
  this.timeout(90_000);
  const dir = tempDir('cairn-cli-sync-');
  const served = join(dir.path, 'served');
  const syncing = join(dir.path, 'syncing');
  let server: CliChild | undefined;

  after(async () => {
    if (server) await stopChild(server, 10_000);
    killTerminals([]);
    await killAll();
    dir.remove();
  });

  it('a log record is written on a line of its own, not on the end of the progress bar', async () => {
    await generateDatadir({ datadir: served, blocks: 20_000 });
    server = spawnCli(['node', '--datadir', served, '--p2p-host', '127.0.0.1', '--p2p-port', '0', '--rpc-port', '0', '--http-port', '0', '--no-mdns', '--log-level', 'warn']);
    const started = server;
    const listen = await waitFor('the serving node to answer', async () => {
      if (started.child.exitCode !== null) throw new Error(`the node exited: ${started.stderr()}`);
      const r = await runCli(['status', '--datadir', served, '--json']);
      return r.code === 0 ? (JSON.parse(r.stdout) as { listen: string[] }).listen[0] : undefined;
    }, 40_000);
    const node = atTerminal(['node', '--datadir', syncing, '--genesis', join(served, 'genesis.json'), '--p2p-host', '127.0.0.1', '--p2p-port', '0', '--rpc-port', '0', '--http-port', '0', '--no-mdns', '--bootstrap', listen]);
    await shows(node, /syncing [█░]+ \d+\/\d+ blocks/);
    node.process.stdin!.write('\x03'); // Ctrl-C, as the terminal sends it
    await shows(node, /INFO {2}stopped/);
    assert.equal(await node.exited, 0, node.screen());
    // The bar ends with no newline: a record written after it began on its line.
    assert.doesNotMatch(node.screen(), /blocks[^\r\n]*\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ /, node.screen());
    assert.match(node.screen(), /\r\x1b\[2K\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ INFO {2}stopping/, 'the bar cleared for the record');
    // Imports finishing during the stop drew the bar again under "stopping".
    const afterStopping = node.screen().slice(node.screen().indexOf('INFO  stopping'));
    assert.doesNotMatch(afterStopping, /syncing [█░]/, node.screen());
  });
});

describe('the sync progress bar', () => {
  /** A bar on a recorded stream, with a clock the test sets. */
  function recordedBar() {
    const frames: string[] = [];
    let clock = 0;
    const bar = new ProgressBar({ write: (text: string | Uint8Array) => frames.push(String(text)) > 0 } as never, () => clock);
    return { bar, frames, at: (ms: number) => void (clock = ms) };
  }
  const progress = (height: number, target: number) => ({ height, target, peer: 'p' });

  it('tells a rate and the time left only once blocks came in: "0 blk/s  ETA ?" read as a stalled sync', () => {
    const { bar, frames, at } = recordedBar();
    bar.update(progress(100, 1000));
    assert.match(frames.at(-1)!, /syncing [█░]+ 100\/1000 blocks$/);
    at(1000);
    bar.update(progress(100, 1000));
    assert.match(frames.at(-1)!, /100\/1000 blocks$/, 'no block yet: still no rate');
    at(2000);
    bar.update(progress(300, 1000));
    assert.match(frames.at(-1)!, /300\/1000 blocks {2}100 blk\/s {2}ETA 7 s$/);
    at(22_000);
    bar.update(progress(304, 1000));
    assert.match(frames.at(-1)!, /304\/1000 blocks {2}9\.3 blk\/s {2}ETA 76 s$/, 'under 10 blk/s, to a tenth: a slower sync read "0 blk/s"');
    at(322_000);
    bar.update(progress(310, 100_000));
    assert.match(frames.at(-1)!, /310\/100000 blocks {2}0\.7 blk\/s {2}ETA 42 h$/, 'a long wait in hours, not "ETA 152880s"');
  });

  it('at the end clears its line, with no last frame telling a time left', () => {
    const { bar, frames, at } = recordedBar();
    bar.update(progress(0, 5));
    at(50);
    bar.update(progress(5, 5));
    assert.deepEqual(frames.slice(1), ['\r\x1b[2K']);
  });

  it('once stopped, clears its line and draws nothing more: the node is stopping', () => {
    const { bar, frames, at } = recordedBar();
    bar.update(progress(100, 1000));
    bar.stop();
    assert.deepEqual(frames.slice(1), ['\r\x1b[2K']);
    at(1000);
    bar.update(progress(200, 1000));
    bar.interrupt();
    bar.update(progress(1000, 1000));
    assert.equal(frames.length, 2, frames.join('|'));
  });
});
