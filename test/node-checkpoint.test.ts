/**
 * `cairn node --checkpoint HEIGHT:HASH` (node/checkpoint.ts): kept in the datadir across starts,
 * one the chain there contradicts refused with nothing changed, a file that is not one named, and
 * no mining below it. What it does to sync and gossip is test/sync-checkpoint.test.ts.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { toHex } from '../ledger/bytes.ts';
import { checkpointText, type Checkpoint } from '../consensus/header-rules.ts';
import { createNode } from '../node/launch.ts';
import type { CairnNode } from '../node/node.ts';
import { CatchUpGate } from '../node/miner.ts';
import { NodeCheckpointError } from '../node/checkpoint.ts';
import { mineOn, networkParams, startNode, stopAll, type TestNode } from './helpers/network.ts';
import { generateDatadir } from '../cli/cmd-generate.ts';
import { tempDir } from './helpers/fixtures.ts';
import { runCli } from './helpers/cli.ts';
import { rpcHandlers } from '../node/rpc-methods.ts';
import { statusLines } from '../cli/cmd-inspect.ts';
import { lines } from '../cli/output.ts';

describe('node checkpoint', function () {
  this.timeout(60_000);
  let first: TestNode | undefined;
  let again: CairnNode | undefined;

  afterEach(async () => {
    await again?.stop();
    again = undefined;
    await stopAll([first]);
    first = undefined;
  });

  /** The datadir of a node that mined 3 blocks, stopped. */
  async function stoppedWithChain(): Promise<TestNode> {
    first = await startNode(networkParams(), [], { verifyThreads: 1 });
    await mineOn(first, 3);
    await first.node.stop();
    return first;
  }

  /** The 'node started' log lines of the nodes restarted. */
  let started: string[] = [];

  async function restart(t: TestNode, checkpoint?: Checkpoint): Promise<CairnNode> {
    const node = createNode({ ...t.config, checkpoint });
    node.on('log', (_level, message, fields) => void (message === 'node started' && started.push(JSON.stringify(fields))));
    again = node;
    try {
      await node.start();
    } catch (err) {
      await node.stop().catch(() => {});
      again = undefined;
      throw err;
    }
    return node;
  }

  it('is kept in the datadir for later starts, which hold it without the flag', async () => {
    const t = await stoppedWithChain();
    const checkpoint = { height: 2, hash: t.node.chain.mainAt(2)!.hash };
    await (await restart(t, checkpoint)).stop();
    assert.equal(readFileSync(join(t.config.datadir, 'checkpoint'), 'utf8'), `${checkpointText(checkpoint)}\n`);
    started = [];
    const node = await restart(t);
    assert.equal(node.chain.checkpoint && checkpointText(node.chain.checkpoint), checkpointText(checkpoint));
    assert.match(started[0] ?? '', new RegExp(`"checkpoint":"${checkpointText(checkpoint)}"`), 'its start says which it holds');
    const status = await rpcHandlers.status(node, {});
    assert.deepEqual(status.checkpoint, { height: 2, hash: toHex(checkpoint.hash), passed: true }, 'status says which it holds, and that its chain passed it');
    assert.match(lines(statusLines(status)), /^checkpoint +2:[0-9a-f]{64} \(its chain passes through it\)$/m);
  });

  it('one the chain in the datadir contradicts refuses the start, naming both blocks, and changes nothing', async () => {
    const t = await stoppedWithChain();
    const kept = { height: 2, hash: t.node.chain.mainAt(2)!.hash };
    await (await restart(t, kept)).stop();
    const other = { height: 3, hash: new Uint8Array(32).fill(7) };
    await assert.rejects(restart(t, other), (err: unknown) => {
      assert.ok(err instanceof NodeCheckpointError, String(err));
      assert.equal(err.code, 'NODE_CHECKPOINT_CONTRADICTED');
      assert.match(err.message, new RegExp(`holds the checkpoint ${checkpointText(kept)}\\) has block ${toHex(t.node.chain.mainAt(3)!.hash)} at height 3, not the checkpoint's ${'07'.repeat(32)}`));
      return true;
    });
    assert.equal(readFileSync(join(t.config.datadir, 'checkpoint'), 'utf8'), `${checkpointText(kept)}\n`);
    // Above its tip, it may lead there: the chain is kept, and so is the checkpoint.
    const above = { height: 50, hash: new Uint8Array(32).fill(9) };
    const node = await restart(t, above);
    assert.equal(node.chain.tip.height, 3);
    assert.equal(readFileSync(join(t.config.datadir, 'checkpoint'), 'utf8'), `${checkpointText(above)}\n`);
  });

  it('a new one lifts the bans kept that a checkpoint made (a mistyped one put right); the same one keeps them', async () => {
    const t = await stoppedWithChain();
    const wrong = { height: 2, hash: new Uint8Array(32).fill(5) };
    const right = { height: 2, hash: t.node.chain.mainAt(2)!.hash };
    const until = Math.floor(Date.now() / 1000) + 600;
    // honest-short's reason names no checkpoint, as bans did before they named theirs.
    const bansFor = (checkpoint: Checkpoint) => ({
      bans: [
        { kind: 'peer', id: 'honest-forked', until, reason: `block ${toHex(right.hash)} at height 2 is not the checkpoint ${checkpointText(checkpoint)}: its chain forks below it` },
        { kind: 'peer', id: 'honest-short', until, reason: 'its headers end at 1, below the checkpoint its status claimed to pass' },
        { kind: 'peer', id: 'forger', until, reason: 'TX_BAD_SIGNATURE: a signature that does not verify' },
      ],
    });
    const banned = (node: CairnNode) => ['honest-forked', 'honest-short', 'forger'].filter((id) => node.peers.isBanned(id));
    writeFileSync(join(t.config.datadir, 'checkpoint'), `${checkpointText(wrong)}\n`);
    writeFileSync(join(t.config.datadir, 'bans.json'), JSON.stringify(bansFor(wrong)));
    await assert.rejects(restart(t), NodeCheckpointError, 'the mistyped one: the chain there contradicts it');
    const above = { height: 9, hash: new Uint8Array(32).fill(6) }; // above the tip: held
    const kept = await restart(t, above);
    assert.deepEqual(banned(kept), ['forger'], 'a new checkpoint lifts what the old one made');
    const saved = JSON.parse(readFileSync(join(t.config.datadir, 'bans.json'), 'utf8')) as { bans: { id: string }[] };
    assert.deepEqual(saved.bans.map((b) => b.id), ['forger'], 'the file says so before any stop');
    await kept.stop();
    writeFileSync(join(t.config.datadir, 'bans.json'), JSON.stringify(bansFor(above)));
    for (const given of [undefined, above]) {
      const again = await restart(t, given);
      assert.deepEqual(banned(again), ['honest-forked', 'honest-short', 'forger'], 'the same checkpoint, kept or given again, keeps them');
      await again.stop();
    }
    assert.deepEqual(banned(await restart(t, right)), ['forger']);
  });

  it('bans a checkpoint no longer held made are lifted at any start, not only the one that renewed it: a kill before their save leaves none', async () => {
    // From a crash-safety review: the new checkpoint was kept before the bans it lifted were
    // saved. A kill, a stop during the start or a failed save in between left the file with the
    // old bans and the new checkpoint kept: the next start saw nothing renewed and restored them.
    const t = await stoppedWithChain();
    const old = { height: 2, hash: new Uint8Array(32).fill(5) };
    const held = { height: 9, hash: new Uint8Array(32).fill(6) };
    const until = Math.floor(Date.now() / 1000) + 600;
    const bans = [
      { kind: 'peer', id: 'honest-forked', until, reason: `block ${toHex(t.node.chain.mainAt(2)!.hash)} at height 2 is not the checkpoint ${checkpointText(old)}: its chain forks below it` },
      { kind: 'peer', id: 'honest-short', until, reason: `its headers end at 1, below the checkpoint ${checkpointText(old)} its status claimed to pass` },
      { kind: 'peer', id: 'forked-from-held', until, reason: `block ${'07'.repeat(32)} at height 9 is not the checkpoint ${checkpointText(held)}: its chain forks below it` },
      { kind: 'peer', id: 'forger', until, reason: 'TX_BAD_SIGNATURE: a signature that does not verify' },
    ];
    // What such a kill left: the new checkpoint kept, the old one's bans in the file.
    writeFileSync(join(t.config.datadir, 'checkpoint'), `${checkpointText(held)}\n`);
    writeFileSync(join(t.config.datadir, 'bans.json'), JSON.stringify({ bans }));
    const node = await restart(t);
    assert.deepEqual(['honest-forked', 'honest-short', 'forked-from-held', 'forger'].filter((id) => node.peers.isBanned(id)), ['forked-from-held', 'forger']);
    const saved = JSON.parse(readFileSync(join(t.config.datadir, 'bans.json'), 'utf8')) as { bans: { id: string }[] };
    assert.deepEqual(saved.bans.map((b) => b.id).sort(), ['forger', 'forked-from-held'], 'and the file says so');
  });

  it('a file that does not read as one refuses the start, naming it', async () => {
    const t = await stoppedWithChain();
    writeFileSync(join(t.config.datadir, 'checkpoint'), 'not a checkpoint\n');
    await assert.rejects(restart(t), (err: unknown) => err instanceof NodeCheckpointError && err.code === 'NODE_CHECKPOINT_FILE' && err.message.includes(join(t.config.datadir, 'checkpoint')));
  });

  it('mines nothing below it: its own blocks there could not pass through it', () => {
    const sync = { syncing: false, peersAhead: 0, statuses: new Map() };
    const gate = (height: number) => new CatchUpGate({ sync, chain: { tip: { height }, checkpoint: { height: 10 } }, snapshotSync: false });
    assert.match(gate(9).reason() ?? '', /below its checkpoint at 10/);
    assert.equal(gate(10).reason(), undefined);
  });

  it('cairn node --checkpoint: a malformed one is a usage error; one the datadir\'s chain contradicts exits 1 naming the block there', async () => {
    const dir = tempDir('cairn-node-checkpoint-');
    try {
      const datadir = join(dir.path, 'chain');
      const { hash } = await generateDatadir({ datadir, blocks: 3 });
      const flags = ['node', '--datadir', datadir, '--p2p-host', '127.0.0.1', '--no-mdns', '--p2p-port', '0', '--rpc-port', '0', '--http-port', '0', '--log-level', 'warn'];
      const malformed = await runCli([...flags, '--checkpoint', '2:XYZ']);
      assert.deepEqual([malformed.code, malformed.stderr], [2, 'cairn: --checkpoint must be HEIGHT:HASH (a block you trust, e.g. from cairn block HEIGHT on a node of your own) (see cairn node --help)\n']);
      const wrong = await runCli([...flags, '--checkpoint', `3:${'0'.repeat(64)}`]);
      assert.equal(wrong.code, 1, wrong.stderr);
      assert.match(wrong.stderr, new RegExp(`^cairn: the chain in \\S+ has block ${toHex(hash)} at height 3, not the checkpoint's 0{64}: check the checkpoint against a node you trust`, 'm'));
    } finally {
      dir.remove();
    }
  });
});
