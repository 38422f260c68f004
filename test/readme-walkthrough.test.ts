/**
 * README.md's walkthrough, run exactly as written, so that it cannot drift from what the code does.
 *
 * The blocks fenced as `sh walkthrough` are typed, in order, into one bash (standing in for the
 * reader's terminals: the second terminal's lines run after the first's, in the same folder);
 * the `sh walkthrough-node` block is the long-running node, started in the background as a second
 * terminal would run it, and waited for until its RPC answers. Where a reader would type at a
 * prompt, CAIRN_PASSWORD answers (the CLI documents it). `npm ci` is not run again: CI has just run
 * it on this clone (.ci/run), and a test cannot reinstall the tree it runs from.
 *
 * The folder is a fresh "clone" in a temporary directory (symlinks to the repository's files), so
 * ./data, ./keys and devkey.hex land there and nothing is left in the repository. The node's ports
 * come from the environment the CLI documents (CAIRN_P2P_PORT=0, CAIRN_RPC_PORT=0, CAIRN_HTTP_PORT=0:
 * any free port, since 7370 to 7372 may be taken on CI), on 127.0.0.1 and without mDNS (CAIRN_P2P_HOST, CAIRN_MDNS).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { RpcClient } from '../cli/rpc-client.ts';
import { withCompileCache } from './helpers/compile-cache.ts';
import { tempDir } from './helpers/fixtures.ts';
import { REPO, waitFor } from './helpers/cli.ts';

interface Block {
  readonly kind: 'walkthrough' | 'walkthrough-node';
  readonly text: string;
}

/** The walkthrough's code blocks, in the order the README gives them. */
export function walkthroughBlocks(readme: string): Block[] {
  return [...readme.matchAll(/^```sh (walkthrough(?:-node)?)\n([\s\S]*?)^```$/gm)].map((m) => ({ kind: m[1] as Block['kind'], text: m[2]! }));
}

/** What the reader's own clone would not have: state the walkthrough and devnets leave behind. */
const NOT_IN_A_CLONE = new Set(['.git', 'data', 'devnet', 'keys', 'devkey.hex', 'proof.json', 'light', '.tmp']);

const README = readFileSync(join(REPO, 'README.md'), 'utf8');
const BLOCKS = walkthroughBlocks(README);

describe('README walkthrough, run as written', function () {
  this.timeout(300_000);
  const dir = tempDir('cairn-readme-');
  const clone = join(dir.path, 'cairn');
  let shell: ChildProcess | undefined;
  let nodePid: number | undefined;
  let output = '';

  before(() => {
    // A clone's files, as links: the code runs from the repository, the data stays here.
    mkdirSync(clone);
    for (const name of readdirSync(REPO)) if (!NOT_IN_A_CLONE.has(name)) symlinkSync(join(REPO, name), join(clone, name));
  });

  after(async () => {
    for (const pid of [nodePid, shell?.pid]) {
      if (pid === undefined) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    if (shell && shell.exitCode === null && shell.signalCode === null) await new Promise((r) => shell!.once('close', r));
    dir.remove();
  });

  it('has the blocks the reader needs, in order: a mining node, status, keys, a confirmed send, the chain, stop', () => {
    assert.deepEqual(BLOCKS.filter((b) => b.kind === 'walkthrough-node').map((b) => b.text.trim()), ['cairn node --mine']);
    const lines = BLOCKS.flatMap((b) => b.text.split('\n').map((l) => l.replace(/\s+#.*$/, '').trim())).filter(Boolean);
    const order = [/^npm ci$/, /^export PATH=/, /^cairn node --mine$/, /^cairn status$/, /^cairn keys import /, /cairn keys new /, /^cairn send .*--wait/, /^cairn account /, /^cairn proof account .* > proof\.json$/, /^cairn verify proof\.json$/, /^cairn blocks/, /^cairn block latest$/, /^cairn tips$/, /^cairn stop$/];
    let at = -1;
    for (const want of order) {
      const found = lines.findIndex((l, i) => i > at && want.test(l));
      assert.ok(found > at, `the walkthrough has ${want} after line ${at}: ${lines.join(' | ')}`);
      at = found;
    }
  });

  it('runs top to bottom on a fresh clone: the node mines, the transfer confirms, cairn stop ends the node with status 0', async () => {
    const env: NodeJS.ProcessEnv = withCompileCache({
      ...process.env,
      CAIRN_PASSWORD: 'walkthrough password',
      CAIRN_P2P_PORT: '0',
      CAIRN_RPC_PORT: '0',
      CAIRN_HTTP_PORT: '0',
      CAIRN_P2P_HOST: '127.0.0.1',
      CAIRN_MDNS: 'off',
    });
    delete env['CAIRN_RPC_TOKEN'];
    const bash = spawn('bash', ['--noprofile', '--norc'], { cwd: clone, env, stdio: ['pipe', 'pipe', 'pipe'] });
    shell = bash;
    bash.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
    bash.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
    const type = (text: string) => bash.stdin.write(text.endsWith('\n') ? text : text + '\n');
    /** Waits for a line the shell echoes once everything typed before it has run. */
    let markers = 0;
    const settle = async (what: string, timeoutMs: number): Promise<string> => {
      const marker = `__walkthrough_${++markers}__`;
      type(`echo ${marker}`);
      return waitFor(what, async () => {
        if (bash.exitCode !== null) throw new Error(`bash exited with status ${bash.exitCode}`);
        const m = new RegExp(`${marker}\\n`).exec(output);
        return m ? output.slice(0, m.index) : undefined;
      }, timeoutMs, 100).catch((err: Error) => {
        throw new Error(`${err.message}\n--- terminal so far ---\n${output}`);
      });
    };
    type('set -euo pipefail');

    const datadir = join(clone, 'data');
    for (const block of BLOCKS) {
      if (block.kind === 'walkthrough-node') {
        type(`( ${block.text.trim()} ) > node.log 2>&1 &`);
        type('WALKTHROUGH_NODE=$!');
        await settle('the node to be started', 10_000);
        // Ready when its RPC answers (it writes rpc.json once it listens).
        const status = await waitFor('the node to answer RPC', async () => (await (await RpcClient.fromDatadir(datadir)).call('status', {})), 60_000).catch((err: Error) => {
          const log = existsSync(join(clone, 'node.log')) ? readFileSync(join(clone, 'node.log'), 'utf8') : '';
          throw new Error(`${err.message}\n--- node.log ---\n${log}`);
        });
        assert.equal(status.mining, true);
        nodePid = (JSON.parse(readFileSync(join(datadir, 'rpc.json'), 'utf8')) as { pid: number }).pid;
        continue;
      }
      // CI has installed this clone already (see the top of this file).
      const text = block.text.replace(/^npm ci(\s.*)?$/m, ': npm ci, already run by CI');
      type(text);
      await settle(`the block "${block.text.split('\n')[0]}"`, 180_000);
    }
    type('wait "$WALKTHROUGH_NODE"; echo "node exited with status $?"');
    const transcript = await settle('the node to exit', 30_000);

    assert.match(transcript, /^cairn \d+\.\d+\.\d+ \(Node\.js 24\./m);
    assert.match(transcript, /^sync +no peers yet: mining on its own$/m);
    assert.match(transcript, /^confirmed in block \d+$/m);
    assert.match(transcript, /^balance +12\.5 CRN$/m);
    assert.match(transcript, /^proven: cairn1\S+: balance 12\.5 CRN, nonce 0, at height \d+, \d+ confirmations?$/m);
    assert.match(transcript, /^checked: \d+ headers from genesis \(links, proof of work, ASERT targets, timestamps\)/m);
    assert.match(transcript, /^height +hash +age +txs +size +miner$/m);
    assert.match(transcript, /^main chain +true$/m);
    assert.match(transcript, /^no forks seen$/m);
    assert.match(transcript, /^stopped the node \(pid \d+\)$/m);
    assert.match(transcript, /^node exited with status 0$/m);
    assert.doesNotMatch(transcript, /command not found|^cairn: /m);
    type('exit 0');
    nodePid = undefined;
  });
});
