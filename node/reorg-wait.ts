/**
 * How long an RPC or REST client is left without an answer while the node reorganises. Mid-way
 * through a reorganisation the main chain ends at its fork point, so reads and submissions wait
 * for its end (Chain.readSettled, Chain.untilSettled); one thousands of blocks deep takes minutes,
 * past any client's timeout. After REORG_WAIT_MS the client is told so instead (ReorganisingError:
 * RPC_ERRORS.REORGANISING, REST 503 with Retry-After), and asks again; `status` answers part-way.
 */
import { CairnError } from '../ledger/errors.ts';
import type { Patience } from '../consensus/settled-reads.ts';
import type { Timer } from './env.ts';
import type { NodeView } from './view.ts';

/** How long a read or a submission waits for a reorganisation under way before it is answered "ask again". */
export const REORG_WAIT_MS = 2_000;
/** When a client told so should ask again: the next try waits REORG_WAIT_MS itself, so soon is cheap. */
export const REORG_RETRY_SECONDS = 1;

/** A reorganisation still under way REORG_WAIT_MS after the request came: nothing was read or done; ask again. */
export class ReorganisingError extends CairnError {
  readonly retryAfterSeconds = REORG_RETRY_SECONDS;
  /** Where the main chain stood, part-way between the tips. */
  readonly height: number;
  constructor(height: number) {
    super('REORGANISING', `the node is reorganising its chain (at height ${height}, part-way to a chain with more work): ask again in ${REORG_RETRY_SECONDS} s`);
    this.height = height;
  }
}

type Waiting = Pick<NodeView, 'chain' | 'env'>;

/**
 * Runs `work` with a patience (consensus/settled-reads.ts) whose signal aborts with a
 * ReorganisingError REORG_WAIT_MS after the first wait for a reorganisation began.
 */
async function withinWait<T>(node: Waiting, work: (patience: Patience) => Promise<T>): Promise<T> {
  let deadline: AbortController | undefined;
  let timer: Timer | undefined;
  const patience = (): AbortSignal => {
    if (!deadline) {
      const started = (deadline = new AbortController());
      timer = node.env.setTimeout(() => started.abort(new ReorganisingError(node.chain.tip.height)), REORG_WAIT_MS);
    }
    return deadline.signal;
  };
  try {
    return await work(patience);
  } finally {
    if (deadline) node.env.clearTimeout(timer);
  }
}

/** Chain.readSettled, but a wait for a reorganisation ends in a ReorganisingError after REORG_WAIT_MS. */
export function readSettled<T>(node: Waiting, read: () => Promise<T>): Promise<T> {
  return withinWait(node, (patience) => node.chain.readSettled(read, patience));
}

/** Chain.untilSettled, for a submission, but rejects with a ReorganisingError after REORG_WAIT_MS. */
export function untilSettled(node: Waiting): Promise<void> {
  return withinWait(node, (patience) => node.chain.untilSettled(patience));
}
