import { EventEmitter } from 'node:events';
import { bytesEqual } from '../../ledger/bytes.ts';
import type { Block } from '../../ledger/block.ts';
import type { NetworkNames } from '../../node/protocols.ts';
import type { Transport } from '../../node/transport.ts';
import { decodeGetBlocks, decodeGetHeaderRange, encodeHeaders, encodeStatus, type Status } from '../../node/wire.ts';

/**
 * A Transport with one peer, `peer`, that answers as a node on the chain `blocks` (heights 1 to n)
 * would: its `status`, header ranges and bodies. For tests of Sync against a well-behaved peer.
 */
export function chainPeerTransport(peer: string, names: NetworkNames, status: Status, blocks: readonly Block[]): Transport {
  return Object.assign(new EventEmitter(), {
    peers: () => [peer],
    async request(_peer: string, protocol: string, body: Uint8Array) {
      if (protocol === names.status) return encodeStatus(status);
      const { from, count } = decodeGetHeaderRange(body);
      return encodeHeaders(blocks.slice(from - 1, from - 1 + count).map((b) => b.header));
    },
    async requestMany(_peer: string, _protocol: string, body: Uint8Array) {
      return decodeGetBlocks(body).map((hash) => blocks.find((b) => bytesEqual(b.header.hash, hash))!.bytes);
    },
  }) as unknown as Transport;
}
