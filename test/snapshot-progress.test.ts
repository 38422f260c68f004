/**
 * What a node says while it joins by snapshot sync (node/snapshot-progress.ts). From a newcomer's
 * walkthrough: for its headers, `cairn status` said "syncing: at 0 of 640000" and the log nothing
 * for 50 s; for its install, "reorganising: at 0 part-way to another chain with more work".
 */
import assert from 'node:assert/strict';
import { rpcHandlers } from '../node/rpc-methods.ts';
import type { StatusResult } from '../node/rpc-types.ts';
import { JoinProgress } from '../node/snapshot-progress.ts';
import { SYNC_LOG_INTERVAL_MS } from '../node/sync-types.ts';
import { statusLines } from '../cli/cmd-inspect.ts';
import { lines } from '../cli/output.ts';
import { encodeSnapshotChunk } from '../node/snapshot-wire.ts';
import { INTERVAL, joinWorld, wrapSnapshots } from './helpers/snapshot-world.ts';

describe('snapshot sync: what status and the log say of a join', function () {
  this.timeout(120_000);

  it("status goes through the join's phases in order, cairn status says each in words, and the install is no reorganisation", async () => {
    const world = joinWorld('snapshot-status');
    // In the order asked; one asked as the world ends is never answered (its clock has stopped).
    const answered: (StatusResult | undefined)[] = [];
    const said: string[] = [];
    world.observe({
      onStarted(sim, node) {
        if (sim.id !== 'n2') return;
        // Asked at every step the join takes: each batch of headers, each chunk, each step of the
        // install; then at the ordinary sync's headers.
        const ask = () => {
          const i = answered.push(undefined) - 1;
          void rpcHandlers.status(node, {}).then((a) => (answered[i] = a));
        };
        node.sync.on('headers', ask);
        node.on('log', (level, message) => {
          if (!message.startsWith('snapshot')) return;
          if (level === 'info') said.push(message);
          ask();
        });
      },
    });
    await world.run();
    const n2 = world.nodes[2]!.node!;
    const pivot = n2.db.history.stateBase;
    assert.ok(pivot > 0 && pivot % INTERVAL === 0, `n2 joined by snapshot (at ${pivot})`);
    const answers = answered.filter((a) => a !== undefined);
    assert.ok(answers.length >= answered.length - 1, `${answered.length - answers.length} of ${answered.length} unanswered`);
    const phases = answers.map((a) => a.snapshotSync?.phase ?? null).filter((phase, i, all) => i === 0 || phase !== all[i - 1]);
    assert.deepEqual(phases, ['headers', 'chunks', 'installing', null]);
    for (const a of answers) {
      const sync = /^sync +(.*)$/m.exec(lines(statusLines(a)))![1]!;
      assert.equal(a.reorganising, false, `no reorganisation: ${sync}`);
      const j = a.snapshotSync;
      if (!j) {
        assert.doesNotMatch(sync, /snapshot/);
        continue;
      }
      assert.ok(j.done <= j.total, JSON.stringify(j));
      if (j.phase === 'headers') {
        assert.equal(j.pivot, 0, 'not chosen yet');
        assert.match(sync, new RegExp(`^snapshot sync: downloading and checking the best peer's headers, ${j.done} of ${j.total}$`));
      } else if (j.phase === 'chunks') {
        assert.equal(j.pivot, pivot);
        assert.match(sync, new RegExp(`^snapshot sync: fetching the state at block ${pivot} from peers, ${j.done} chunks? checked, ${j.total - j.done} to go$`));
      } else {
        assert.equal(j.pivot, pivot);
        // At genesis until its last step reads the chain again at the pivot.
        assert.ok(a.height === 0 || (a.height === pivot && j.done === 2), `height ${a.height} at step ${j.done + 1}`);
        assert.match(sync, new RegExp(`^snapshot sync: installing the state at block ${pivot} \\(step ${j.done + 1} of 3\\); then the blocks after it$`));
      }
    }
    // Each step answered as it ran, not once the install had ended (as a reorganisation is waited out).
    const installing = answers.filter((a) => a.snapshotSync?.phase === 'installing' && a.height === 0).map((a) => a.snapshotSync!.done);
    assert.deepEqual([...new Set(installing)], [0, 1, 2], 'every step of the install answered during it');
    const headers = answers.map((a) => a.snapshotSync).filter((j) => j?.phase === 'headers');
    assert.ok(headers.some((j) => j!.done === j!.total && j!.total >= 130), `the headers counted up to the peer's height: ${JSON.stringify(headers.at(-1))}`);
    assert.deepEqual(
      said.filter((m) => m !== 'snapshot made' && m !== 'snapshots kept'),
      ['snapshot sync: checking the headers of the peer with the most work', 'snapshot sync', 'snapshot sync: installing the state', 'snapshot installed'],
      'a line in the log as each phase begins',
    );
    for (const sim of world.nodes) sim.crash();
  });

  it('a join that waits for a snapshot to be served says each phase once, not again at every round that ends "later"', async () => {
    // From the lead's list: a node waiting for its peers to serve a snapshot logged "checking the
    // headers", the chunks' line and "no peer left" again at each round, one a status apart.
    const world = joinWorld('snapshot-waits');
    const ROUNDS_REFUSED = 4;
    let rounds = 0;
    for (const id of ['n0', 'n1']) wrapSnapshots(world, id, (honest) => (req, peer) => (rounds <= ROUNDS_REFUSED ? Promise.resolve(encodeSnapshotChunk({ kind: 'none' })) : honest(req, peer)));
    /** Each line said at info or warn, with the pivot it names, and how often. */
    const said = new Map<string, number>();
    world.observe({
      onStarted(sim, node) {
        if (sim.id !== 'n2') return;
        node.on('log', (level, message, fields) => {
          if (message === 'snapshot sync: checking the headers of the peer with the most work') rounds++;
          if (!message.startsWith('snapshot sync') || level === 'debug') return;
          const line = `${level}: ${message}${fields?.['pivot'] === undefined ? '' : ` (pivot ${String(fields['pivot'])})`}`;
          said.set(line, (said.get(line) ?? 0) + 1);
        });
      },
    });
    await world.run();
    const n2 = world.nodes[2]!.node!;
    const pivot = n2.db.history.stateBase;
    assert.ok(pivot > 0, 'n2 joined by snapshot in the end');
    assert.ok(rounds > ROUNDS_REFUSED, `${rounds} rounds`);
    // A pivot that moves up as the chain grows is news, and said; the same one again is not.
    assert.deepEqual([...said].filter(([, times]) => times > 1), [], 'nothing said twice');
    for (const line of ['info: snapshot sync: checking the headers of the peer with the most work', `info: snapshot sync (pivot ${pivot})`, `warn: snapshot sync: no peer left that serves the state at ${pivot}; asking again at the next status`, `info: snapshot sync: installing the state (pivot ${pivot})`]) {
      assert.ok(said.has(line), `said: ${line}\n${[...said.keys()].join('\n')}`);
    }
    for (const sim of world.nodes) sim.crash();
  });

  it(`logs a phase's progress every ${SYNC_LOG_INTERVAL_MS / 1000} s within it, not at every step`, () => {
    let ms = 5_000;
    const logged: [string, Record<string, unknown> | undefined][] = [];
    const progress = new JoinProgress({ monotonic: () => ms }, (_level, message, fields) => void logged.push([message, fields]));
    progress.advance(10, 100);
    assert.equal(progress.now, undefined, 'no progress before a phase begins');
    progress.begin({ phase: 'headers', pivot: 0, done: 0, total: 640_000 }, 'headers begin', { target: 640_000 });
    ms += SYNC_LOG_INTERVAL_MS - 1;
    progress.advance(120_000, 640_000);
    assert.deepEqual(progress.now, { phase: 'headers', pivot: 0, done: 120_000, total: 640_000 });
    ms += 1;
    progress.advance(130_000, 640_000);
    progress.advance(140_000, 640_000);
    progress.begin({ phase: 'chunks', pivot: 630_000, done: 3, total: 16 }, 'chunks begin', {});
    ms += SYNC_LOG_INTERVAL_MS;
    progress.advance(9, 18);
    progress.end();
    assert.equal(progress.now, undefined);
    assert.deepEqual(logged, [
      ['headers begin', { target: 640_000 }],
      ['snapshot sync: headers checked', { height: 130_000, target: 640_000 }],
      ['chunks begin', {}],
      ['snapshot sync: state chunks checked', { pivot: 630_000, checked: 9, toGo: 9 }],
    ]);
  });
});
