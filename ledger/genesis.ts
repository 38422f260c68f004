import { Writer, bigIntToBytes, bytesEqual, toHex } from './bytes.ts';
import { GenesisError } from './errors.ts';
import { jsonParseReason, jsonValueText } from './json-text.ts';
import { sha256 } from './hash.ts';
import { decodeAddress, encodeAddress } from './keys.ts';
import { MAX_AMOUNT, MAX_DECIMALS, parseAmount } from './amount.ts';
import { BLOCK_VERSION, COINBASE_BYTES, HEADER_BYTES, MAX_BLOCK_BYTES_LIMIT, makeBlock, makeHeader, type Block } from './block.ts';
import { compareKeys, sortByKey, stateKey, type StateChange } from './smt.ts';
import { buildSubtree, placeRoot, type SortedLeaf } from './smt-build.ts';

/** Everything that defines a network. Parsed once from genesis.json; its hash names the network. */
export interface ChainParams {
  readonly name: string;
  readonly chainId: number;
  /** Seconds since the epoch: the genesis block's timestamp. */
  readonly timestamp: number;
  /** The genesis block's proof-of-work target, and the anchor of the difficulty schedule. */
  readonly target: bigint;
  /** Intended seconds between blocks. */
  readonly blockTime: number;
  /** How fast difficulty answers a change of hash rate: ASERT's half-life, in seconds. */
  readonly asertHalfLife: number;
  readonly reward: bigint;
  /** What people call one whole coin ("CRN"): amounts are shown as base units / 10^decimals of it. */
  readonly unit: string;
  /** How many base units make one `unit`, as a power of ten. */
  readonly decimals: number;
  readonly maxBlockBytes: number;
  readonly maxBlockTxs: number;
  /** Initial balances, sorted by address bytes so the commitment is canonical. */
  readonly alloc: ReadonlyArray<{ readonly address: Uint8Array; readonly balance: bigint }>;
}

const KNOWN_KEYS = ['name', 'chainId', 'timestamp', 'target', 'blockTime', 'asertHalfLife', 'reward', 'unit', 'decimals', 'limits', 'alloc'];
const MAX_TARGET = (1n << 256n) - 1n;
const MAX_NAME_BYTES = 64;

function fail(message: string): never {
  throw new GenesisError(`genesis: ${message}`);
}

function integer(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    fail(`"${field}" must be an integer from ${min} to ${max}, got ${jsonValueText(value)}`);
  }
  return value;
}

function amount(value: unknown, field: string): bigint {
  const parsed = typeof value === 'string' ? parseAmount(value) : undefined;
  if (parsed === undefined) fail(`"${field}" must be a decimal string of base units up to ${MAX_AMOUNT}, got ${jsonValueText(value)}`);
  return parsed;
}

function plainObject(value: unknown, field: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`"${field}" must be an object`);
  return value as Record<string, unknown>;
}

/**
 * JSON.parse keeps the last of two equal member names and other parsers keep the first, so one
 * file could define two networks. Walks text that JSON.parse has already accepted, tracking the
 * names seen in each open object.
 */
function findDuplicateMember(text: string): string | undefined {
  const stack: (Set<string> | null)[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '{') stack.push(new Set());
    else if (c === '[') stack.push(null);
    else if (c === '}' || c === ']') stack.pop();
    else if (c === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      const raw = text.slice(i, end + 1);
      i = end;
      let j = i + 1;
      while (/\s/.test(text[j] ?? '')) j++;
      const names = stack.at(-1);
      if (text[j] === ':' && names) {
        const name = JSON.parse(raw) as string;
        if (names.has(name)) return name;
        names.add(name);
      }
    }
  }
  return undefined;
}

/** Parses genesis.json text into params, refusing anything unknown, missing or out of range. */
export function parseGenesis(text: string): ChainParams {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    fail(`not valid JSON (${jsonParseReason(err, text)})`);
  }
  const duplicate = findDuplicateMember(text);
  if (duplicate !== undefined) fail(`member ${jsonValueText(duplicate)} appears twice in one object`);
  const g = plainObject(json, 'genesis');
  for (const key of Object.keys(g)) if (!KNOWN_KEYS.includes(key)) fail(`unknown field ${jsonValueText(key)}`);
  for (const key of KNOWN_KEYS) if (!(key in g)) fail(`missing field "${key}"`);

  if (typeof g.name !== 'string' || !/^[\x21-\x7e]+$/.test(g.name) || g.name.length > MAX_NAME_BYTES) {
    fail(`"name" must be 1 to ${MAX_NAME_BYTES} printable ASCII characters without spaces`);
  }
  if (typeof g.target !== 'string' || !/^0x[0-9a-f]{1,64}$/.test(g.target)) {
    fail('"target" must be a lower-case hex string "0x…" of at most 64 digits');
  }
  const target = BigInt(g.target);
  if (target === 0n || target > MAX_TARGET) fail('"target" must be non-zero');

  if (typeof g.unit !== 'string' || !/^[A-Z][A-Z0-9]{0,7}$/.test(g.unit)) {
    fail('"unit" must be 1 to 8 upper-case ASCII letters or digits, starting with a letter');
  }

  const limits = plainObject(g.limits, 'limits');
  for (const key of Object.keys(limits)) if (key !== 'maxBlockBytes' && key !== 'maxBlockTxs') fail(`unknown field ${jsonValueText(`limits.${key}`)}`);
  const maxBlockBytes = integer(limits.maxBlockBytes, 'limits.maxBlockBytes', HEADER_BYTES + COINBASE_BYTES + 1, MAX_BLOCK_BYTES_LIMIT);
  const maxBlockTxs = integer(limits.maxBlockTxs, 'limits.maxBlockTxs', 0, 1_000_000);

  const allocObject = plainObject(g.alloc, 'alloc');
  let total = 0n;
  const alloc = Object.entries(allocObject).map(([text, value]) => {
    let address: Uint8Array;
    try {
      address = decodeAddress(text);
    } catch (err) {
      fail(`alloc: ${(err as Error).message}`);
    }
    const balance = amount(value, `alloc.${text}`);
    total += balance;
    return { address, balance };
  });
  if (total > MAX_AMOUNT) fail('the sum of "alloc" exceeds MAX_AMOUNT');
  alloc.sort((a, b) => Buffer.compare(a.address, b.address));

  return {
    name: g.name,
    chainId: integer(g.chainId, 'chainId', 0, 0xffffffff),
    timestamp: integer(g.timestamp, 'timestamp', 0, 2 ** 48),
    target,
    blockTime: integer(g.blockTime, 'blockTime', 1, 86_400),
    asertHalfLife: integer(g.asertHalfLife, 'asertHalfLife', 1, 365 * 86_400),
    reward: amount(g.reward, 'reward'),
    unit: g.unit,
    decimals: integer(g.decimals, 'decimals', 0, MAX_DECIMALS),
    maxBlockBytes,
    maxBlockTxs,
    alloc,
  };
}

/** The genesis.json text of `p`, which parseGenesis reads back as `p` (a network made by a program). */
export function genesisJson(p: ChainParams): string {
  const alloc: Record<string, string> = {};
  for (const a of p.alloc) alloc[encodeAddress(a.address)] = a.balance.toString();
  const json = {
    name: p.name,
    chainId: p.chainId,
    timestamp: p.timestamp,
    target: `0x${p.target.toString(16).padStart(64, '0')}`,
    blockTime: p.blockTime,
    asertHalfLife: p.asertHalfLife,
    reward: p.reward.toString(),
    unit: p.unit,
    decimals: p.decimals,
    limits: { maxBlockBytes: p.maxBlockBytes, maxBlockTxs: p.maxBlockTxs },
    alloc,
  };
  return JSON.stringify(json, null, 2) + '\n';
}

/** The canonical bytes of the parameters; the genesis header's Merkle root is their hash. */
export function encodeParams(p: ChainParams): Uint8Array {
  const name = new TextEncoder().encode(p.name);
  const unit = new TextEncoder().encode(p.unit);
  const w = new Writer(256 + p.alloc.length * 28)
    .bytes(new TextEncoder().encode('cairn-genesis-v2'))
    .varint(name.length)
    .bytes(name)
    .u32(p.chainId)
    .u64(BigInt(p.timestamp))
    .bytes(bigIntToBytes(p.target, 32))
    .u32(p.blockTime)
    .u32(p.asertHalfLife)
    .u64(p.reward)
    .varint(unit.length)
    .bytes(unit)
    .u8(p.decimals)
    .u32(p.maxBlockBytes)
    .u32(p.maxBlockTxs)
    .varint(p.alloc.length);
  for (const a of p.alloc) w.bytes(a.address).u64(a.balance);
  return w.finish();
}

/**
 * Whether two parameter sets make the same genesis block, without computing its state root: the
 * root follows from the allocations, and the encoding holds them with every other parameter.
 */
export function sameGenesis(a: ChainParams, b: ChainParams): boolean {
  return bytesEqual(encodeParams(a), encodeParams(b));
}

/** The genesis state as changes to the empty tree: one account per allocation, nonce 0. */
export function genesisChanges(p: ChainParams): StateChange[] {
  return p.alloc.map((a) => ({ key: stateKey(a.address), account: { balance: a.balance, nonce: 0n } }));
}

/** The genesis state's leaves in tree-key order, each with its address: what its root and its store are built from in one pass. */
export function genesisLeaves(p: ChainParams): (SortedLeaf & { readonly address: Uint8Array })[] {
  const leaves = sortByKey(p.alloc.map((a) => ({ key: stateKey(a.address), account: { balance: a.balance, nonce: 0n }, address: a.address })));
  for (let i = 1; i < leaves.length; i++) {
    if (compareKeys(leaves[i - 1]!.key, leaves[i]!.key) === 0) throw new RangeError('the genesis allocates one address twice');
  }
  return leaves;
}

/**
 * The root of the genesis state, built in one pass over its leaves (ledger/smt-build.ts) rather
 * than as a tree in memory: every open of a store checks it, and for a genesis of a million
 * accounts that tree was ~930 MB of heap, more than a node runs with.
 */
export function genesisStateRoot(p: ChainParams): Uint8Array {
  return placeRoot(buildSubtree(genesisLeaves(p), 0));
}

/**
 * Block 0. It has no transactions and pays nobody: its Merkle root commits to the parameters
 * instead, so the genesis hash changes whenever any rule of the network does; its state root
 * commits to the allocations. `stateRoot`: the root where the caller has it already (the
 * genesis store's writer builds it as it writes; a store holds it), otherwise computed.
 */
export function genesisBlock(p: ChainParams, stateRoot: Uint8Array = genesisStateRoot(p)): Block {
  const header = makeHeader({
    version: BLOCK_VERSION,
    height: 0,
    prevHash: new Uint8Array(32),
    merkleRoot: sha256(encodeParams(p)),
    stateRoot,
    timestamp: p.timestamp,
    target: p.target,
    nonce: 0n,
  });
  return makeBlock(header, { to: new Uint8Array(20), amount: 0n }, []);
}

export function genesisHashHex(p: ChainParams): string {
  return toHex(genesisBlock(p).header.hash);
}
