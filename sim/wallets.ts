import { sha256 } from '../ledger/hash.ts';
import { addressOf, publicKeyOf } from '../ledger/keys.ts';
import { libsecp256k1Signer } from '../ledger/signature-backends.js';
import { signTransaction, type Transaction } from '../ledger/transaction.ts';
import type { CairnNode } from '../node/node.ts';
import type { Random } from './random.ts';

export interface Key {
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly address: Uint8Array;
}

function key(label: string): Key {
  const privateKey = sha256(new TextEncoder().encode(`cairn simulator key ${label}`));
  const publicKey = publicKeyOf(privateKey);
  return { privateKey, publicKey, address: addressOf(publicKey) };
}

/** libsecp256k1 signs 20 times faster than noble, with the same bytes; noble where it is missing. */
const native = libsecp256k1Signer();

/** Signs as `cairn send` does (the same bytes), fast. */
export function sign(fields: Parameters<typeof signTransaction>[0], k: Key): Transaction {
  return signTransaction(fields, k.privateKey, { publicKey: k.publicKey, sign: native?.sign });
}

/** Keys are derived once per process: the same labels give the same keys in every run. */
const cache = new Map<string, Key>();
function cached(label: string): Key {
  let k = cache.get(label);
  if (!k) cache.set(label, (k = key(label)));
  return k;
}

/**
 * The users of the simulated network: funded keys that send each other (and fresh addresses)
 * transfers through the nodes, as `cairn send` does: the nonce is the node's next one.
 */
export class Wallets {
  readonly keys: readonly Key[];
  readonly balance: bigint;

  /** `deep`: pairs of `deep N` keys to add, whose accounts' tree paths leave the top (sim/deep-accounts.ts). */
  constructor(count: number, balance = 1_000_000_000n, deep: readonly (readonly [number, number])[] = []) {
    const users = Array.from({ length: count }, (_, i) => cached(`user ${i}`));
    this.keys = [...users, ...deep.flat().map((n) => cached(`deep ${n}`))];
    this.balance = balance;
  }

  minerAddress(index: number): Uint8Array {
    return cached(`miner ${index}`).address;
  }

  alloc(): { address: Uint8Array; balance: bigint }[] {
    return this.keys.map((k) => ({ address: k.address, balance: this.balance })).sort((a, b) => Buffer.compare(a.address, b.address));
  }

  /**
   * One user's transfer through `node`: a valid one, two that spend the same nonce differently
   * (to go to two nodes), or one and its replacement at a higher fee.
   */
  async transfer(node: CairnNode, rng: Random, style: 'valid' | 'conflicting' | 'replacing'): Promise<Transaction[]> {
    const from = rng.pick(this.keys);
    const nonce = await node.mempool.nextNonce(from.address);
    const chainId = node.params.chainId;
    const to = () => (rng.chance(0.7) ? rng.pick(this.keys).address : rng.bytes(20));
    const fee = BigInt(1 + rng.int(20));
    const first = sign({ chainId, to: to(), amount: BigInt(1 + rng.int(1000)), fee, nonce }, from);
    if (style === 'valid') return [first];
    const secondFee = style === 'replacing' ? fee * 2n + 1n : fee;
    return [first, sign({ chainId, to: to(), amount: BigInt(1 + rng.int(1000)), fee: secondFee, nonce }, from)];
  }
}
