import { checkBlockBody, type Block } from '../../ledger/block.ts';
import type { ChainDB, ChainTip } from '../../ledger/chaindb.ts';
import type { BlockEffects, SignatureChecker } from '../../ledger/state.ts';
import { connectBlock, disconnectBlock } from '../../consensus/connect.ts';
import type { SaneBlock } from '../../consensus/sanity.ts';

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

  static async open(db: ChainDB): Promise<TipHarness> {
    return new TipHarness(db, await db.storedTip());
  }

  async connectBlock(block: Block, signatures?: SignatureChecker): Promise<BlockEffects> {
    checkBlockBody(block, this.db.params);
    const effects = await connectBlock(this.db, this.db.params, this.tip, block as SaneBlock, { signatures });
    this.tip = { hash: block.header.hash, height: block.header.height };
    return effects;
  }

  async disconnectTip(): Promise<Block> {
    const block = await this.db.getBlock(this.tip.hash);
    if (!block) throw new Error('the tip has no stored block');
    await disconnectBlock(this.db, block);
    this.tip = { hash: block.header.prevHash, height: this.tip.height - 1 };
    return block;
  }
}
