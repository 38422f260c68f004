import { bytesEqual } from '../ledger/bytes.ts';
import type { Chain } from '../consensus/chain.ts';
import { decodeIndexRecord } from '../consensus/block-index.ts';
import { HeaderChainCheck } from '../consensus/headers.ts';
import type { OurHeaders } from './header-sync.ts';

/** Timestamps the median time past takes: a header's and the 10 before it. */
const MEDIAN_SPAN = 11;

/**
 * A snapshot sync's staged headers (ledger/snapshot-join.ts) as the chain a join round's header
 * sync goes on from: checked in an earlier round, they are compared with the new peer's by height
 * as our main chain is (node/header-sync.ts, findFork), and the check of its headers starts after
 * the last one its chain holds too, from what that staged header's record keeps (its total work,
 * its timestamps and the ASERT anchor's), so a round re-fetches only what it does not share. A
 * long chain's headers (152 MB a million) were fetched from genesis again each round.
 *
 * Their floor is genesis: a peer whose chain forks below their top is followed from the fork, and
 * what its headers replace is dropped as they are staged (SnapshotJoin). Headers that contradict
 * our checkpoint (staged before it was given) are dropped here, so that the peer's header at its
 * height is checked against it again.
 */
export async function stagedHeaders(chain: Chain): Promise<OurHeaders> {
  const join = chain.db.join;
  const genesis = chain.db.genesis.header;
  const checkpoint = chain.checkpoint;
  let top = await join.stagedTop();
  if (checkpoint && checkpoint.height <= top) {
    const [there] = await join.stagedRange(checkpoint.height, 1);
    if (!there || !bytesEqual(there.hash, checkpoint.hash)) {
      await join.dropHeadersFrom(checkpoint.height);
      top = checkpoint.height - 1;
    }
  }
  return {
    floor: 0,
    top,
    async hashes(from, count) {
      if (count <= 0 || from > top) return [];
      const staged = await join.stagedRange(Math.max(from, 1), Math.min(from + count, top + 1) - Math.max(from, 1));
      return [...(from === 0 ? [genesis.hash] : []), ...staged.map((s) => s.hash)];
    },
    async checkFrom(height, hash, now) {
      if (height === 0) return bytesEqual(hash, genesis.hash) ? chain.headerCheckFrom(0, now, hash) : undefined;
      const first = Math.max(1, height - MEDIAN_SPAN + 1);
      const records = (await join.stagedRange(first, height - first + 1)).map((s) => decodeIndexRecord(s.record));
      const last = records.at(-1);
      if (records.length !== height - first + 1 || !last || !bytesEqual(last.header.hash, hash)) return undefined;
      const anchor = first === 1 ? records[0]! : decodeIndexRecord((await join.stagedRange(1, 1))[0]!.record);
      const recentTimes = [...(first === 1 && height < MEDIAN_SPAN ? [genesis.timestamp] : []), ...records.map((r) => r.header.timestamp)];
      return new HeaderChainCheck(chain.params, { header: last.header, totalWork: last.totalWork, anchorTimestamp: anchor.header.timestamp, recentTimes }, now, checkpoint);
    },
  };
}
