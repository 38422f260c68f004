import { CairnError } from '../ledger/errors.ts';

export type ConsensusErrorCode =
  | 'HEADER_BAD_POW'
  | 'HEADER_BAD_VERSION'
  | 'HEADER_BAD_TARGET'
  | 'HEADER_BAD_HEIGHT'
  | 'HEADER_TIME_TOO_OLD'
  | 'HEADER_TIME_TOO_NEW'
  | 'BLOCK_KNOWN_INVALID'
  | 'BLOCK_PARENT_INVALID'
  /** Forks off deeper than the reorg depth this node follows: not followed, nobody's fault. */
  | 'BLOCK_FORK_TOO_DEEP'
  /** Another block at the height of the checkpoint this node holds (`--checkpoint`): a chain it never takes. */
  | 'HEADER_CHECKPOINT';

/** A rule judged by consensus; `banScore` says how much the sender is to blame (0: maybe not at all). */
export class ConsensusError extends CairnError {
  constructor(code: ConsensusErrorCode, message: string, banScore = 100) {
    super(code, message, banScore);
  }
}
