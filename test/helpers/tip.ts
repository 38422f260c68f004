import { checkBlockBody, type Block } from '../../ledger/block.ts';
import type { ChainDB } from '../../ledger/chaindb.ts';
import type { ChainTip } from '../../ledger/chaindb-types.ts';
import type { BlockEffects, SignatureChecker } from '../../ledger/state.ts';
import { connectBlock, disconnectBlock } from '../../consensus/connect.ts';
import type { SaneBlock } from '../../consensus/sanity.ts';
import { changesOfEffects } from '../../ledger/smt.ts';
import { knowsState, rememberChanges, rememberState, stateOfStore } from './states.ts';

/**
 * The state step of consensus on its own, for tests of the state rules and the store: a tip held
 * here (Chain holds the node's), blocks checked as `checkBlockBody` and `connectBlock` check
 * them, without proof of work or header context.
 */
export class TipHarness {
  readonly db: ChainDB;
  tip: ChainTip;

  private constructor(db: ChainDB, tip: ChainTip) {
    this.db = db;
    this.tip = tip;
  }

  /** Also records the tip's state, so that test blocks built on it (childBlock) carry the right state root. */
  static async open(db: ChainDB): Promise<TipHarness> {
    const tip = await db.storedTip();
    if (!knowsState(tip.hash)) rememberState(tip.hash, await stateOfStore(db));
    return new TipHarness(db, tip);
  }

  async connectBlock(block: Block, signatures?: SignatureChecker): Promise<BlockEffects> {
    checkBlockBody(block, this.db.params);
    const effects = await connectBlock(this.db, this.db.params, this.tip, block as SaneBlock, { signatures });
    if (!knowsState(this.tip.hash)) rememberState(this.tip.hash, await stateOfStore(this.db));
    rememberChanges(block.header.hash, this.tip.hash, () => changesOfEffects(effects), 2 * block.txs.length + 1);
    this.tip = { hash: block.header.hash, height: block.header.height };
    return effects;
  }

  async disconnectTip(): Promise<Block> {
    const block = await this.db.getBlock(this.tip.hash);
    if (!block) throw new Error('the tip has no stored block');
    const parent = await this.db.getBlock(block.header.prevHash);
    if (!parent) throw new Error('the tip has no stored parent');
    await disconnectBlock(this.db, block, parent.header.stateRoot);
    this.tip = { hash: block.header.prevHash, height: this.tip.height - 1 };
    if (!knowsState(this.tip.hash)) rememberState(this.tip.hash, await stateOfStore(this.db));
    return block;
  }
}
