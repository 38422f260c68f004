import { BoundedSet } from '../ledger/bounded.ts';
import { toHex } from '../ledger/bytes.ts';
import type { Block } from '../ledger/block.ts';
import type { ChainParams } from '../ledger/genesis.ts';
import type { BlockOutcome, Chain } from '../consensus/chain.ts';
import { checkBlockSanity, type SaneBlock } from '../consensus/sanity.ts';
import type { Gossip } from './gossip.ts';

/** Its last blocks a node still tells as its own when a reorganisation connects them late. */
const OWN_BLOCKS_KEPT = 128;

/**
 * The blocks this node made: imported and gossiped as fast as the rules allow, and told apart
 * from those received ('mined' in the node's 'block' event), also when a reorganisation connects
 * one late, from a copy read back from the store.
 */
export class OwnBlocks {
  private readonly chain: Chain;
  private readonly gossip: Gossip;
  private readonly params: ChainParams;
  /** The last blocks made here, by hash, oldest first. */
  private readonly made = new BoundedSet<string>(OWN_BLOCKS_KEPT);
  /** Blocks made here whose import is running, gossiped the moment they connect. */
  private readonly announceOnConnect = new Set<string>();

  constructor(chain: Chain, gossip: Gossip, params: ChainParams) {
    this.chain = chain;
    this.gossip = gossip;
    this.params = params;
  }

  has(hashHex: string): boolean {
    return this.made.has(hashHex);
  }

  /** A block connected: one of ours whose import was told to announce it goes out now. */
  connected(block: Block, hashHex: string): void {
    if (this.announceOnConnect.delete(hashHex)) void this.gossip.publishBlock(block);
  }

  /**
   * Imports a block this node made and gossips it. A block on the tip whose header and body hold
   * goes out first (the checks a forwarder of a compact block makes: node/gossip.ts, BIP 152), so
   * that peers need not wait for our import. Any other (the tip moved while it was mined) goes
   * out the moment it is connected, if it is.
   */
  async importAndAnnounce(block: Block): Promise<BlockOutcome> {
    const hash = toHex(block.header.hash);
    this.made.add(hash);
    try {
      const onTip = this.saneOnTip(block);
      if (onTip) return await this.gossip.announceAndImport(onTip);
      this.announceOnConnect.add(hash);
      return await this.chain.processBlock(block);
    } finally {
      this.announceOnConnect.delete(hash);
    }
  }

  /** The block, its sanity checked, if it builds on the tip with a header and body that hold. */
  private saneOnTip(block: Block): SaneBlock | undefined {
    try {
      const sane = checkBlockSanity(block, this.params);
      return this.chain.judgeHeader(block.header) === 'tip' ? sane : undefined;
    } catch {
      return undefined; // the import says why
    }
  }
}
