/**
 * A full node's checkpoint (`cairn node --checkpoint HEIGHT:HASH`): a block the user trusts, as
 * Bitcoin Core's checkpoints and minimum chain work. Without one, a new node met first (alone,
 * or before the honest statuses came in) by a peer with a cheap chain longer than the reorg depth
 * took it, and the heavier honest chain, forking below the floor, was never followed: under ASERT
 * such a chain reaches the honest height less a few half-lives at a hash a block, no timestamp
 * ahead of the clock. With one, no other block is taken at its height (consensus, HEADER_CHECKPOINT:
 * a peer whose chain holds one is banned), and below it sync takes only a chain that reaches it and
 * gossip nothing (node/sync.ts, node/gossip.ts).
 *
 * Kept in the datadir (`checkpoint`, the same text as the flag, as a light client keeps its own:
 * node/light/checkpoint.ts), so that a restart holds it.
 */
import { join } from 'node:path';
import { bytesEqual, toHex } from '../ledger/bytes.ts';
import { CairnError } from '../ledger/errors.ts';
import type { Chain } from '../consensus/chain.ts';
import { checkpointText, sameCheckpoint, type Checkpoint } from '../consensus/header-rules.ts';
import { CHECKPOINT_FILE, CheckpointError as LightCheckpointError, readCheckpoint } from './light/checkpoint.ts';
import { replaceFile } from './durable-file.ts';

/** Where a node keeps the checkpoint it holds across restarts. */
export interface CheckpointStore {
  /** The datadir, for what a start refused says. */
  readonly datadir: string;
  /** The checkpoint kept, if any; throws a NodeCheckpointError if what is kept is not one. */
  read(): Checkpoint | undefined;
  write(checkpoint: Checkpoint): Promise<void>;
}

/** A checkpoint the node cannot hold: its file does not read as one, or the chain in the datadir contradicts it. */
export class NodeCheckpointError extends CairnError {
  constructor(code: 'NODE_CHECKPOINT_FILE' | 'NODE_CHECKPOINT_CONTRADICTED', message: string) {
    super(code, message);
  }
}

/** The `checkpoint` file in `datadir`. */
export function checkpointFile(datadir: string): CheckpointStore {
  return {
    datadir,
    read() {
      try {
        return readCheckpoint(datadir);
      } catch (err) {
        if (err instanceof LightCheckpointError) throw new NodeCheckpointError('NODE_CHECKPOINT_FILE', err.message);
        throw err;
      }
    },
    write: (checkpoint) => replaceFile(join(datadir, CHECKPOINT_FILE), `${checkpointText(checkpoint)}\n`),
  };
}

/**
 * Checks the chain opened on `kept` or `given` (given wins) against it, and keeps a new one: a
 * main chain with another block at its height refuses the start, and nothing changes. A chain
 * below it is kept (it may lead there: a node some way behind); sync takes from there only a
 * chain that reaches it. True if the checkpoint held is another than the one kept.
 */
export async function holdCheckpoint(chain: Chain, store: CheckpointStore | undefined, given: Checkpoint | undefined, kept: Checkpoint | undefined): Promise<boolean> {
  const checkpoint = given ?? kept;
  if (!checkpoint) return false;
  if (chain.tip.height >= checkpoint.height) {
    const [there] = await chain.byHeight.hashes(checkpoint.height, 1);
    if (there && !bytesEqual(there, checkpoint.hash)) {
      const previous = given && kept && !sameCheckpoint(given, kept) ? ` (it holds the checkpoint ${checkpointText(kept)})` : '';
      throw new NodeCheckpointError(
        'NODE_CHECKPOINT_CONTRADICTED',
        `the chain in ${store?.datadir ?? 'this datadir'}${previous} has block ${toHex(there)} at height ${checkpoint.height}, not the checkpoint's ${toHex(checkpoint.hash)}: ` +
          'check the checkpoint against a node you trust; if it holds, this node took another chain: start it again with an empty datadir and the checkpoint',
      );
    }
  }
  const renewed = given !== undefined && !(kept && sameCheckpoint(given, kept));
  if (renewed) await store?.write(given);
  return renewed;
}

/** What a ban's reason says of the checkpoint that made it: `HEIGHT:HASH`, as the rules that ban name it. */
const NAMED_CHECKPOINT = /\bcheckpoint (\d+:[0-9a-f]{64})\b/;

/** A ban kept from an earlier start, as far as lifting it goes. */
export interface KeptBan {
  readonly reason: string;
}

/**
 * The bans kept from an earlier start that a checkpoint no longer held made: a peer whose chain
 * holds another block at its height (HEADER_CHECKPOINT), or stops short of it. Kept, they refused
 * every honest peer for the ban's length after a mistyped checkpoint was put right. Those whose
 * reason names another checkpoint than `held` are lifted at every start, not only at the one that
 * renewed it: the new checkpoint is kept before the bans are saved without them, and a kill, a
 * stop during the start or a failed save in between would otherwise leave them until they ran out. Those
 * naming none (made before bans named theirs) only when `renewed`.
 */
export function checkpointBansToLift(held: Checkpoint | undefined, renewed: boolean): { readonly why: string; readonly applies: (ban: KeptBan) => boolean } {
  const heldText = held && checkpointText(held);
  return {
    why: 'made for another checkpoint than the one now held',
    applies: (ban) => {
      if (!/\bcheckpoint\b/.test(ban.reason)) return false;
      const named = NAMED_CHECKPOINT.exec(ban.reason)?.[1];
      return named === undefined ? renewed : named !== heldText;
    },
  };
}
