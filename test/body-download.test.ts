import assert from 'node:assert/strict';
import type { SaneBlock } from '../consensus/sanity.ts';
import { BodyDownload, stallPauseMs } from '../node/body-download.ts';
import { realEnv } from '../node/env.ts';
import { busyError } from '../node/transport.ts';

/** A batch's stand-in blocks: each "block" is its height, which is all the download passes on. */
function heightsOf(hashes: readonly Uint8Array[]): number[] {
  return hashes.map((h) => new DataView(h.buffer, h.byteOffset).getUint32(0));
}

function hashOf(height: number): Uint8Array {
  const h = new Uint8Array(32);
  new DataView(h.buffer).setUint32(0, height);
  return h;
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * A download of `batches` batches from providers whose answers `answer` paces (each answered in
 * full, nobody at fault), each batch's import taking `importMs`.
 */
function pacedDownload(batches: number, answer: (peer: string) => Promise<void>, importMs: number): BodyDownload {
  return new BodyDownload({
    env: realEnv,
    first: 1,
    last: batches * 32,
    batchHashes: async (begin, count) => Array.from({ length: count }, (_, i) => hashOf(begin + i)),
    fetch: async (peer, hashes) => {
      await answer(peer);
      return heightsOf(hashes) as unknown as SaneBlock[];
    },
    importBatch: () => delay(importMs),
    blame: () => assert.fail('nobody is at fault'),
    isBanned: () => false,
  });
}

describe('BodyDownload', () => {
  it('a busy answer never loses a batch, when both of a peer\'s requests take it in turn', async () => {
    // Found by the long-chain bench: a joiner's sync stopped for good at a batch boundary. One
    // request of a peer was answered busy and waited out its retry-after inside its bookkeeping;
    // meanwhile the peer's other request took the same batch, and when the first one's wait ended
    // it cleared the batch's holder — the other request's, since both belong to the same peer. That
    // request was then answered busy too, found no holder of its own, and did not put the batch
    // back: nobody held it, nobody would fetch it, and the import waited on it forever.
    const imported: number[] = [];
    const calls = new Map<number, number>();
    const download = new BodyDownload({
      env: realEnv,
      first: 1,
      last: 96, // three batches of 32
      batchHashes: async (start, count) => Array.from({ length: count }, (_, i) => hashOf(start + i)),
      fetch: async (peer, hashes) => {
        const first = heightsOf(hashes)[0]!;
        const n = calls.get(first) ?? 0;
        calls.set(first, n + 1);
        if (first === 1 && n === 0) throw busyError(peer, 'blocks', 20); // the first request waits 20 ms...
        if (first === 1 && n === 1) {
          await delay(60); // ...while the second holds the same batch, in flight past those 20 ms
          throw busyError(peer, 'blocks', 5);
        }
        return heightsOf(hashes) as unknown as SaneBlock[];
      },
      importBatch: async (blocks) => {
        imported.push(...(blocks as unknown as number[]));
      },
      blame: () => assert.fail('nobody is at fault'),
      isBanned: () => false,
    });
    download.join('peer-a');
    let timer: NodeJS.Timeout | undefined;
    const stalled = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`the download stalled after ${imported.length} blocks`)), 5_000)));
    try {
      await Promise.race([download.run(), stalled]);
    } finally {
      clearTimeout(timer);
    }
    assert.deepEqual(imported, Array.from({ length: 96 }, (_, i) => i + 1));
    assert.ok((calls.get(1) ?? 0) >= 3, 'the first batch was asked for again after both busy answers');
  });

  it('a provider that held up the import sits out a pause, then takes batches again', async () => {
    // The sync bench's three-peer runs were served almost wholly by one peer: each other peer's
    // one slow answer early on dropped it from the download for good.
    const start = Date.now();
    const served = new Map<string, number[]>(); // per peer, when each batch it served came back
    let slowOnce = true;
    // The import is the slow part, as in a real sync.
    const download = pacedDownload(60, async (peer) => {
      if (peer === 'peer-b' && slowOnce) {
        slowOnce = false;
        await delay(1_500); // a busy moment, long enough to hold up the import
      } else {
        await delay(5);
      }
      served.set(peer, [...(served.get(peer) ?? []), Date.now() - start]);
    }, 100);
    download.join('peer-a');
    download.join('peer-b');
    await download.run();
    const late = (served.get('peer-b') ?? []).filter((at) => at > 1_500 + 2_000);
    assert.ok(late.length >= 5, `peer-b served ${late.length} batches after its pause (served at ${JSON.stringify(served.get('peer-b'))} ms)`);
  });

  it('a stalling provider\'s pause grows fourfold with each stall, up to 64 s (Bitcoin Core\'s cap)', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 40].map(stallPauseMs), [2_000, 8_000, 32_000, 64_000, 64_000, 64_000]);
  });

  it('equal providers share the batches, whichever answered last', async () => {
    const served = new Map<string, number>();
    const download = pacedDownload(40, async (peer) => {
      await delay(2);
      served.set(peer, (served.get(peer) ?? 0) + 1);
    }, 10);
    for (const peer of ['peer-a', 'peer-b', 'peer-c']) download.join(peer);
    await download.run();
    const counts = ['peer-a', 'peer-b', 'peer-c'].map((peer) => served.get(peer) ?? 0);
    assert.equal(counts.reduce((a, b) => a + b, 0), 40);
    for (const n of counts) assert.ok(n >= 8, `batches served: ${counts.join(', ')}`);
  });
});
