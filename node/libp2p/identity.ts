import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';

export const PEER_KEY_FILE = 'p2p-key';

/**
 * The node's libp2p identity, kept in the datadir so its peer id survives restarts (peers and
 * bootstrap lists name it). Ed25519, protobuf-encoded as libp2p writes it, mode 0600.
 */
export async function loadOrCreatePeerKey(datadir: string): Promise<PrivateKey> {
  const file = join(datadir, PEER_KEY_FILE);
  try {
    return privateKeyFromProtobuf(await readFile(file));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new Error(`cannot read the node identity ${file}: ${(err as Error).message}`);
    }
  }
  const key = await generateKeyPair('Ed25519');
  await writeFile(file, privateKeyToProtobuf(key), { mode: 0o600, flag: 'wx' });
  return key;
}
