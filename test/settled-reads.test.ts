/**
 * SettledReads (consensus/settled-reads.ts), behind Chain.readSettled: a read of the main chain
 * never sees a reorganisation part-way, and never holds up an import.
 */
import assert from 'node:assert/strict';
import { SettledReads } from '../consensus/settled-reads.ts';
import { afterTurns } from './helpers/fixtures.ts';

describe('settled reads', () => {
  it('a read waits out a reorganisation under way', async () => {
    const reads = new SettledReads();
    reads.begin();
    let read = 0;
    const answer = reads.read(async () => ++read, () => assert.fail('no fallback'));
    await afterTurns(5);
    assert.equal(read, 0, 'not read while it is under way');
    reads.settle();
    assert.equal(await answer, 1);
  });

  it('a read during which a reorganisation began is made again once it has settled', async () => {
    const reads = new SettledReads();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const seen: number[] = [];
    let reorganised = false;
    const answer = reads.read(
      async () => {
        seen.push(seen.length);
        if (seen.length === 1) await held;
        return reorganised ? 'after' : 'during';
      },
      () => assert.fail('no fallback'),
    );
    await afterTurns(2);
    reads.begin(); // a reorganisation begins while the first read is out
    release();
    await afterTurns(5);
    assert.equal(seen.length, 1, 'not read again before it has settled');
    reorganised = true;
    reads.settle();
    assert.equal(await answer, 'after');
    assert.equal(seen.length, 2);
  });

  it('a read that failed while a reorganisation began is made again once it has settled, not answered with its error', async () => {
    // A block by height read as a reorganisation disconnects it is "not found": an answer of neither chain.
    const reads = new SettledReads();
    let tries = 0;
    const answer = reads.read(
      async () => {
        if (++tries > 1) return 'found';
        reads.begin();
        throw new Error('no main-chain block at height 10');
      },
      () => assert.fail('no fallback'),
    ).catch((err: Error) => `answered: ${err.message}`);
    await afterTurns(5);
    assert.equal(tries, 1, 'not read again before it has settled');
    reads.settle();
    assert.equal(await answer, 'found');
  });

  it("a wait for a reorganisation ends with its patience's reason once that aborts; patience is asked for only by a wait", async () => {
    const reads = new SettledReads();
    const deadline = new AbortController();
    let asked = 0;
    const patience = () => (asked++, deadline.signal);
    assert.equal(await reads.read(async () => 'read', () => assert.fail('no fallback'), patience), 'read');
    assert.equal(asked, 0, 'no wait, no deadline');
    reads.begin();
    let read = 0;
    const answer = reads.read(async () => ++read, () => assert.fail('no fallback'), patience).catch((err: Error) => err.message);
    const submission = reads.untilSettled(patience).then(() => 'settled', (err: Error) => err.message);
    await afterTurns(5);
    deadline.abort(new Error('ask again'));
    assert.deepEqual(await Promise.all([answer, submission]), ['ask again', 'ask again']);
    assert.equal(read, 0, 'nothing read');
    reads.settle();
  });

  it('an error of a read that no reorganisation disturbed is the answer', async () => {
    const reads = new SettledReads();
    await assert.rejects(reads.read(async () => assert.fail('no such block'), () => assert.fail('no fallback')), /no such block/);
  });

  it('a chain that reorganises under every read is read between imports after a few tries', async () => {
    const reads = new SettledReads();
    let tries = 0;
    const answer = await reads.read(
      async () => {
        tries++;
        reads.begin();
        reads.settle();
        return 'moved';
      },
      async (read) => `between imports: ${await read()}`,
    );
    assert.equal(answer, 'between imports: moved');
    assert.equal(tries, 4, 'three tries, then the one between imports');
  });

  it("the read between imports waits for the lock only as long as patience lets it: a reorganisation may take the lock first", async () => {
    // From a review: status raced a 2 s timer before reorg-wait.ts; through readSettled, its last
    // try waited for the import lock unbounded, and one reorganisation thousands of blocks deep
    // that took the lock after the last check held it for minutes.
    const reads = new SettledReads();
    const deadline = new AbortController();
    let lockFree!: () => void;
    const lock = new Promise<void>((resolve) => (lockFree = resolve));
    const answer = reads
      .read(
        async () => {
          reads.begin();
          reads.settle();
          return 'moved';
        },
        async (read) => (await lock, read()),
        () => deadline.signal,
      )
      .catch((err: Error) => err.message);
    await afterTurns(5);
    deadline.abort(new Error('ask again'));
    assert.equal(await answer, 'ask again');
    lockFree();
  });
});
