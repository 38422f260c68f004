import { toHex } from '../ledger/bytes.ts';

/**
 * Protocol ids and gossip topics are namespaced by the genesis hash, so nodes of different
 * networks never even agree on a protocol; the status handshake then checks the full hash.
 */
export interface NetworkNames {
  readonly status: string;
  readonly headers: string;
  /** Main-chain headers by height: full-node sync and light clients alike. */
  readonly headerRange: string;
  readonly blocks: string;
  readonly txPush: string;
  readonly blockTxs: string;
  /** Light clients: account proofs. */
  readonly proofs: string;
  /** Snapshot sync: chunks of the state at a snapshot block, with range proofs. */
  readonly snapshot: string;
  readonly dht: string;
  readonly blockTopic: string;
  readonly compactBlockTopic: string;
  readonly txTopic: string;
  readonly mdnsTag: string;
}

export function networkNames(genesisHash: Uint8Array): NetworkNames {
  const ns = toHex(genesisHash).slice(0, 16);
  return {
    status: `/cairn/${ns}/status/2`,
    headers: `/cairn/${ns}/headers/1`,
    headerRange: `/cairn/${ns}/headerrange/1`,
    blocks: `/cairn/${ns}/blocks/1`,
    txPush: `/cairn/${ns}/txs/1`,
    blockTxs: `/cairn/${ns}/blocktxs/1`,
    proofs: `/cairn/${ns}/proofs/1`,
    snapshot: `/cairn/${ns}/snapshot/2`,
    dht: `/cairn/${ns}/kad/1.0.0`,
    blockTopic: `/cairn/${ns}/blocks/1`,
    compactBlockTopic: `/cairn/${ns}/cblocks/1`,
    txTopic: `/cairn/${ns}/txs/2`,
    mdnsTag: `cairn-${ns}.local`,
  };
}

/** Every gossip topic a node joins (and scores its peers on). */
export function gossipTopics(names: NetworkNames): string[] {
  return [names.blockTopic, names.compactBlockTopic, names.txTopic];
}
