import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import type { PrivateKey } from '@libp2p/interface';
import { replaceFile } from '../durable-file.ts';

export const PEER_KEY_FILE = 'p2p-key';

/**
 * The node's libp2p identity, kept in the datadir so its peer id survives restarts (peers and
 * bootstrap lists name it). Ed25519, protobuf-encoded as libp2p writes it, mode 0600, written
 * whole or not at all. An empty file never held a key: what a kill or a power cut between making
 * the file and writing it left (versions before wrote it in place), and a new key takes its place.
 * Anything else that is not a key stops the start, naming the file: it may be a peer id others know.
 */
export async function loadOrCreatePeerKey(datadir: string): Promise<PrivateKey> {
  const file = join(datadir, PEER_KEY_FILE);
  let bytes: Uint8Array | undefined;
  try {
    bytes = await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new Error(`cannot read the node identity ${file}: ${(err as Error).message}`);
    }
  }
  if (bytes !== undefined && bytes.length > 0) {
    try {
      return privateKeyFromProtobuf(bytes);
    } catch (err) {
      throw new Error(`cannot read the node identity ${file}: ${(err as Error).message}`);
    }
  }
  const key = await generateKeyPair('Ed25519');
  await replaceFile(file, privateKeyToProtobuf(key));
  return key;
}

/**
 * The peer id of the identity kept in `datadir`, without making one: undefined when there is none
 * yet, or none that can be read (the start says why, naming the file).
 */
export async function keptPeerId(datadir: string): Promise<string | undefined> {
  const bytes = await readFile(join(datadir, PEER_KEY_FILE)).catch(() => undefined);
  if (bytes === undefined || bytes.length === 0) return undefined;
  try {
    return peerIdFromPrivateKey(privateKeyFromProtobuf(bytes)).toString();
  } catch {
    return undefined;
  }
}
