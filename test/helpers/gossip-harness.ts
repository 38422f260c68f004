/**
 * The parts the transaction-gossip tests build a Gossip or a TxRelay from: a transport that keeps
 * each topic's validator (called as a peer's message would be), a peer table that connects peers
 * as an inbound or outbound connection records them, and a signature checker that counts.
 */
import type { GossipValidator, Transport } from '../../node/transport.ts';
import type { NetworkNames } from '../../node/protocols.ts';
import { PeerManager } from '../../node/peers.ts';
import { PeerRecords } from '../../node/peer-records.ts';
import { TxSignatureVerifier } from '../../node/tx-signatures.ts';
import { InlineVerifier } from '../../node/inline-verifier.ts';

/** Topic names short enough to read in a test. */
export const TEST_TOPICS = { blockTopic: '/blocks', compactBlockTopic: '/cblocks', txTopic: '/txs' } as NetworkNames;

/** A transport whose `subscribe` keeps each topic's validator in `validators`. */
export function validatorsTransport(): { transport: Transport; validators: Map<string, GossipValidator> } {
  const validators = new Map<string, GossipValidator>();
  const transport = { subscribe: (topic: string, validate: GossipValidator) => void validators.set(topic, validate) } as unknown as Transport;
  return { transport, validators };
}

/** Peers and their records; `connect` records a connection as the transport's events would. */
export function peerTable(now: () => number = () => 0) {
  const peers = new PeerManager(now);
  const records = new PeerRecords();
  const connect = (peer: string, remoteAddr: string, direction: 'inbound' | 'outbound' = 'inbound') => {
    records.connected(peer, { direction, remoteAddr }, now());
    peers.connectedFrom(peer, remoteAddr);
  };
  return { peers, records, connect };
}

/** Signatures checked inline, and how many have been. */
export function countingSignatures(): { signatures: TxSignatureVerifier; verified: () => number; reset: () => void } {
  let verified = 0;
  const inline = new InlineVerifier();
  const signatures = new TxSignatureVerifier({
    verify: (items) => {
      verified += items.length;
      return inline.verify(items);
    },
  });
  return { signatures, verified: () => verified, reset: () => void (verified = 0) };
}
