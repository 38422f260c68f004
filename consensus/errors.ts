import { CairnError } from '../ledger/errors.ts';

export type ConsensusErrorCode =
  | 'HEADER_BAD_POW'
  | 'HEADER_BAD_TARGET'
  | 'HEADER_BAD_HEIGHT'
  | 'HEADER_TIME_TOO_OLD'
  | 'HEADER_TIME_TOO_NEW'
  | 'BLOCK_KNOWN_INVALID'
  | 'BLOCK_PARENT_INVALID';

/**
 * A header-level rule, judged by consensus. `remember` says whether the failure is a fact about
 * the header itself (so its hash can be marked invalid for good) or could be someone else's doing
 * (a clock ahead of ours, a body swapped under a good header), in which case it must not be.
 */
export class ConsensusError extends CairnError {
  readonly remember: boolean;
  constructor(code: ConsensusErrorCode, message: string, options: { banScore?: number; remember: boolean }) {
    super(code, message, options.banScore ?? 100);
    this.remember = options.remember;
  }
}
