/**
 * parseGenesis accepts the bundled devnet file and refuses, with a GenesisError naming the field,
 * anything that does not define a network. The genesis hash commits to every parameter and to
 * nothing else (not the order of the file's allocations).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { bech32m } from '@scure/base';
import { toHex } from '../ledger/bytes.ts';
import { GenesisError } from '../ledger/errors.ts';
import { sha256 } from '../ledger/hash.ts';
import { addressOf, encodeAddress, publicKeyOf } from '../ledger/keys.ts';
import { MAX_AMOUNT } from '../ledger/amount.ts';
import { COINBASE_BYTES, HEADER_BYTES, MAX_BLOCK_BYTES_LIMIT, decodeBlock } from '../ledger/block.ts';
import { genesisBlock, genesisChanges, genesisHashHex, genesisStateRoot, parseGenesis, sameGenesis } from '../ledger/genesis.ts';
import { MemoryStateTree } from '../ledger/smt-memory.ts';
import { seededRandom, testKey, testParams } from './helpers/fixtures.ts';

const BUNDLED_PATH = fileURLToPath(new URL('../genesis.json', import.meta.url));
const BUNDLED = readFileSync(BUNDLED_PATH, 'utf8');

type Json = Record<string, unknown>;

const ADDR_1 = encodeAddress(testKey(1).address);
const ADDR_2 = encodeAddress(testKey(2).address);
const ADDR_3 = encodeAddress(testKey(3).address);

/** A small valid genesis to mutate: every row changes one thing. */
function base(): Json {
  return {
    name: 'cairn-unit-1',
    chainId: 42,
    timestamp: 1_800_000_000,
    target: '0x00ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
    blockTime: 10,
    asertHalfLife: 600,
    reward: '5000',
    unit: 'UNT',
    decimals: 8,
    limits: { maxBlockBytes: 1_000_000, maxBlockTxs: 1000 },
    alloc: { [ADDR_1]: '100', [ADDR_2]: '200', [ADDR_3]: '300' },
  };
}

function withField(path: string, value: unknown): Json {
  const g = base();
  const [head, tail] = path.split('.') as [string, string | undefined];
  if (tail === undefined) g[head] = value;
  else (g[head] as Json)[tail] = value;
  return g;
}
function without(path: string): Json {
  const g = base();
  const [head, tail] = path.split('.') as [string, string | undefined];
  if (tail === undefined) delete g[head];
  else delete (g[head] as Json)[tail];
  return g;
}

function rejected(text: string, field: RegExp): void {
  assert.throws(() => parseGenesis(text), (err: unknown) => {
    assert.ok(err instanceof GenesisError, `expected GenesisError, got ${String(err)}`);
    assert.equal(err.code, 'GENESIS_INVALID');
    assert.match(err.message, field);
    return true;
  });
}

/** One character of a valid address changed to another valid bech32 character. */
function badChecksum(address: string): string {
  const last = address.at(-1) === 'q' ? 'p' : 'q';
  return address.slice(0, -1) + last;
}

const FIELDS = ['name', 'chainId', 'timestamp', 'target', 'blockTime', 'asertHalfLife', 'reward', 'unit', 'decimals', 'limits', 'alloc'];

interface BadRow {
  readonly name: string;
  readonly text: string;
  /** What the message must name. */
  readonly field: RegExp;
}

const BAD: BadRow[] = [
  { name: 'not JSON', text: '{ "name": ', field: /not valid JSON/ },
  { name: 'empty text', text: '', field: /not valid JSON/ },
  { name: 'JSON with a trailing comma', text: JSON.stringify(base()).replace(/}$/, ',}'), field: /not valid JSON/ },
  { name: 'an array', text: JSON.stringify([base()]), field: /"genesis" must be an object/ },
  { name: 'null', text: 'null', field: /"genesis" must be an object/ },
  { name: 'a string', text: '"cairn"', field: /"genesis" must be an object/ },
  { name: 'an unknown field', text: JSON.stringify({ ...base(), difficulty: 1 }), field: /unknown field "difficulty"/ },
  { name: 'a __proto__ field', text: JSON.stringify(base()).replace(/^{/, '{"__proto__":{},'), field: /unknown field "__proto__"/ },
  { name: 'an unknown limits field', text: JSON.stringify(withField('limits.maxGas', 1)), field: /unknown field "limits.maxGas"/ },
  ...FIELDS.map((f) => ({ name: `missing "${f}"`, text: JSON.stringify(without(f)), field: new RegExp(`missing field "${f}"`) })),
  ...['maxBlockBytes', 'maxBlockTxs'].map((f) => ({ name: `missing "limits.${f}"`, text: JSON.stringify(without(`limits.${f}`)), field: new RegExp(`"limits\\.${f}"`) })),
  // target
  ...[
    ['zero', '0x0'],
    ['zero, full width', '0x' + '0'.repeat(64)],
    ['upper-case hex', '0x00FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF'],
    ['an upper-case prefix', '0X00ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff'],
    ['no 0x', '00ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff'],
    ['65 digits', '0x1' + 'f'.repeat(64)],
    ['65 digits with a leading zero', '0x0' + 'f'.repeat(64)],
    ['no digits', '0x'],
    ['a number', 255],
    ['a non-hex digit', '0x00fg'],
  ].map(([what, value]) => ({ name: `target: ${String(what)}`, text: JSON.stringify(withField('target', value)), field: /"target"/ })),
  // alloc
  { name: 'alloc: a bad checksum', text: JSON.stringify(withField('alloc', { [badChecksum(ADDR_1)]: '1' })), field: /alloc: invalid address/ },
  { name: 'alloc: an upper-case address', text: JSON.stringify(withField('alloc', { [ADDR_1.toUpperCase()]: '1' })), field: /alloc: invalid address/ },
  { name: 'alloc: another prefix', text: JSON.stringify(withField('alloc', { [bech32m.encode('bc', bech32m.toWords(testKey(1).address))]: '1' })), field: /alloc: invalid address/ },
  { name: 'alloc: 32 bytes', text: JSON.stringify(withField('alloc', { [bech32m.encode('cairn', bech32m.toWords(new Uint8Array(32)))]: '1' })), field: /alloc: invalid address/ },
  { name: 'alloc: not an address', text: JSON.stringify(withField('alloc', { 'not-an-address': '1' })), field: /alloc: invalid address/ },
  { name: 'alloc: an array', text: JSON.stringify(withField('alloc', [[ADDR_1, '1']])), field: /"alloc" must be an object/ },
  ...[
    ['negative', '-1'],
    ['a decimal point', '1.5'],
    ['a float number', 1.5],
    ['an integer number', 100],
    ['an exponent', '1e3'],
    ['a leading zero', '0100'],
    ['a leading space', ' 100'],
    ['empty', ''],
    ['over MAX_AMOUNT', (MAX_AMOUNT + 1n).toString()],
    ['null', null],
  ].map(([what, value]) => ({
    name: `alloc balance: ${String(what)}`,
    text: JSON.stringify(withField('alloc', { [ADDR_1]: value })),
    field: new RegExp(`"alloc\\.${ADDR_1}"`),
  })),
  {
    name: 'alloc balances summing over MAX_AMOUNT',
    text: JSON.stringify(withField('alloc', { [ADDR_1]: MAX_AMOUNT.toString(), [ADDR_2]: '1' })),
    field: /sum of "alloc" exceeds MAX_AMOUNT/,
  },
  // reward
  ...[['negative', '-5'], ['a number', 5000], ['a decimal', '50.0'], ['over MAX_AMOUNT', (MAX_AMOUNT + 1n).toString()]].map(([what, value]) => ({
    name: `reward: ${String(what)}`,
    text: JSON.stringify(withField('reward', value)),
    field: /"reward"/,
  })),
  // integers
  ...(
    [
      ['blockTime', 0], ['blockTime', 86_401], ['blockTime', 1.5], ['blockTime', '10'], ['blockTime', -10], ['blockTime', null],
      ['asertHalfLife', 0], ['asertHalfLife', 365 * 86_400 + 1],
      ['chainId', -1], ['chainId', 2 ** 32], ['chainId', 7.5], ['chainId', '7'],
      ['timestamp', -1], ['timestamp', 2 ** 48 + 1], ['timestamp', 1e300],
      ['limits.maxBlockBytes', 0], ['limits.maxBlockBytes', HEADER_BYTES + COINBASE_BYTES], ['limits.maxBlockBytes', MAX_BLOCK_BYTES_LIMIT + 1],
      ['limits.maxBlockBytes', 1e6 + 0.5], ['limits.maxBlockBytes', '1000000'],
      ['limits.maxBlockTxs', -1], ['limits.maxBlockTxs', 1_000_001], ['limits.maxBlockTxs', 2.5],
      ['decimals', -1], ['decimals', 19], ['decimals', 8.5], ['decimals', '8'], ['decimals', null],
    ] as const
  ).map(([path, value]) => ({
    name: `${path}: ${JSON.stringify(value)}`,
    text: JSON.stringify(withField(path, value)),
    field: new RegExp(`"${path.replace('.', '\\.')}" must be an integer`),
  })),
  // unit
  ...[
    ['lower case', 'crn'],
    ['empty', ''],
    ['9 characters', 'ABCDEFGHI'],
    ['a leading digit', '1CRN'],
    ['a space', 'C RN'],
    ['a number', 8],
  ].map(([what, value]) => ({ name: `unit: ${String(what)}`, text: JSON.stringify(withField('unit', value)), field: /"unit"/ })),
  { name: 'limits: not an object', text: JSON.stringify(withField('limits', [1_000_000, 1000])), field: /"limits" must be an object/ },
  // name
  ...[
    ['with a space', 'cairn devnet'],
    ['with a tab', 'cairn\tdevnet'],
    ['empty', ''],
    ['65 characters', 'x'.repeat(65)],
    ['non-ASCII', 'cairn-é'],
    ['a number', 1],
  ].map(([what, value]) => ({ name: `name: ${String(what)}`, text: JSON.stringify(withField('name', value)), field: /"name"/ })),
];

describe('genesis', () => {
  it('parses the bundled genesis.json: the devnet with its public development key', () => {
    const params = parseGenesis(BUNDLED);
    assert.equal(params.name, 'cairn-devnet-1');
    assert.equal(params.chainId, 1337);
    assert.equal(params.blockTime, 5);
    assert.equal(params.reward, 5_000_000_000n);
    assert.deepEqual([params.unit, params.decimals], ['CRN', 8]);
    assert.equal(params.target, BigInt('0x000003ffffffffffffffffffffffffffffffffffffffffffffffffffffffffff'));
    assert.equal(params.alloc.length, 1);
    // The README's key: SHA-256 of a public sentence, so anyone can reproduce it.
    const devKey = sha256(new TextEncoder().encode('cairn devnet development key: public, never use for value'));
    assert.equal(toHex(devKey), '8010557e47b9eac54915c85a544ff38a80598f1ee6010fde2ef745789f9008c6');
    const devAddress = addressOf(publicKeyOf(devKey));
    assert.equal(encodeAddress(devAddress), 'cairn12rqpp3a5l5vef8weqsvd42g9rzmqx4la30zrhz');
    assert.deepEqual(params.alloc, [{ address: devAddress, balance: 1_000_000_000_000_000_000n }]);
    // Its genesis block is well formed and decodes to itself.
    const block = genesisBlock(params);
    assert.equal(toHex(decodeBlock(block.bytes).header.hash), genesisHashHex(params));
    assert.equal(block.header.height, 0);
    assert.equal(block.txs.length, 0);
  });

  it('commits to the state the allocations make: its root built in one pass is the tree\'s, at any size', () => {
    const random = seededRandom(11);
    for (const size of [0, 1, 2, 3, 17, 256, 3000]) {
      const alloc = Array.from({ length: size }, () => ({ address: random.bytes(20), balance: BigInt(random.int(1_000_000)) }));
      alloc.sort((a, b) => Buffer.compare(a.address, b.address));
      const params = testParams({ name: 'genesis-root', alloc });
      const root = MemoryStateTree.EMPTY.with(genesisChanges(params)).root;
      assert.equal(toHex(genesisStateRoot(params)), toHex(root), `${size} accounts`);
      assert.equal(toHex(genesisBlock(params).header.stateRoot), toHex(root));
    }
    const twice = testParams({ name: 'genesis-root', alloc: [{ address: testKey(1).address, balance: 1n }, { address: testKey(1).address, balance: 2n }] });
    assert.throws(() => genesisStateRoot(twice), /allocates one address twice/);
  });

  it('accepts the boundaries of every range', () => {
    const edges: Array<[string, unknown]> = [
      ['name', 'x'.repeat(64)], ['name', '!~'], ['chainId', 0], ['chainId', 0xffffffff], ['timestamp', 0], ['timestamp', 2 ** 48],
      ['target', '0x1'], ['target', '0x' + 'f'.repeat(64)], ['target', '0x' + '0'.repeat(63) + '1'],
      ['blockTime', 1], ['blockTime', 86_400], ['asertHalfLife', 1], ['asertHalfLife', 365 * 86_400],
      ['reward', '0'], ['reward', MAX_AMOUNT.toString()],
      ['unit', 'X'], ['unit', 'ABCDEFG8'], ['decimals', 0], ['decimals', 18],
      ['limits.maxBlockBytes', HEADER_BYTES + COINBASE_BYTES + 1], ['limits.maxBlockBytes', MAX_BLOCK_BYTES_LIMIT],
      ['limits.maxBlockTxs', 0], ['limits.maxBlockTxs', 1_000_000],
      ['alloc', {}], ['alloc', { [ADDR_1]: '0' }], ['alloc', { [ADDR_1]: (MAX_AMOUNT - 1n).toString(), [ADDR_2]: '1' }],
    ];
    for (const [path, value] of edges) {
      assert.doesNotThrow(() => parseGenesis(JSON.stringify(withField(path, value))), `${path} = ${JSON.stringify(value)}`);
    }
  });

  describe('refuses a bad genesis with a GenesisError naming the field', () => {
    it('the base of the table is valid', () => {
      assert.doesNotThrow(() => parseGenesis(JSON.stringify(base())));
    });
    for (const row of BAD) it(row.name, () => rejected(row.text, row.field));
  });

  it('changing any single parameter changes the genesis hash', () => {
    const variants: Array<[string, Json]> = [
      ['name', withField('name', 'cairn-unit-2')],
      ['chainId', withField('chainId', 43)],
      ['timestamp', withField('timestamp', 1_800_000_001)],
      ['target', withField('target', '0x00fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffe')],
      ['blockTime', withField('blockTime', 11)],
      ['asertHalfLife', withField('asertHalfLife', 601)],
      ['reward', withField('reward', '5001')],
      ['unit', withField('unit', 'UNU')],
      ['decimals', withField('decimals', 9)],
      ['limits.maxBlockBytes', withField('limits.maxBlockBytes', 1_000_001)],
      ['limits.maxBlockTxs', withField('limits.maxBlockTxs', 1001)],
      ['an alloc balance', withField('alloc', { [ADDR_1]: '101', [ADDR_2]: '200', [ADDR_3]: '300' })],
      ['an alloc address', withField('alloc', { [ADDR_1]: '100', [ADDR_2]: '200', [encodeAddress(testKey(4).address)]: '300' })],
      ['an alloc entry removed', withField('alloc', { [ADDR_1]: '100', [ADDR_2]: '200' })],
      ['an alloc entry of 0 added', withField('alloc', { [ADDR_1]: '100', [ADDR_2]: '200', [ADDR_3]: '300', [encodeAddress(testKey(4).address)]: '0' })],
      ['two balances swapped', withField('alloc', { [ADDR_1]: '200', [ADDR_2]: '100', [ADDR_3]: '300' })],
    ];
    const baseHash = genesisHashHex(parseGenesis(JSON.stringify(base())));
    const seen = new Map<string, string>([[baseHash, 'base']]);
    const baseParams = parseGenesis(JSON.stringify(base()));
    for (const [what, g] of variants) {
      const params = parseGenesis(JSON.stringify(g));
      const hash = genesisHashHex(params);
      assert.ok(!seen.has(hash), `changing ${what} gives the same genesis hash as ${seen.get(hash)}`);
      seen.set(hash, what);
      // What a datadir compares a genesis file by, without the state root.
      assert.equal(sameGenesis(params, baseParams), false, `sameGenesis after changing ${what}`);
    }
  });

  it('neither the order of alloc entries nor the layout of the file changes the genesis hash', () => {
    const g = base();
    const baseHash = genesisHashHex(parseGenesis(JSON.stringify(g)));
    const entries = Object.entries(g.alloc as Json);
    const orders = [[0, 1, 2], [2, 1, 0], [1, 0, 2], [1, 2, 0], [2, 0, 1], [0, 2, 1]];
    for (const order of orders) {
      const alloc = Object.fromEntries(order.map((i) => entries[i]!));
      const params = parseGenesis(JSON.stringify({ ...g, alloc }));
      assert.equal(genesisHashHex(params), baseHash, `alloc order ${order.join(',')}`);
      assert.ok(sameGenesis(params, parseGenesis(JSON.stringify(g))), `sameGenesis, alloc order ${order.join(',')}`);
    }
    const reordered = Object.fromEntries(Object.entries(g).reverse());
    assert.equal(genesisHashHex(parseGenesis(JSON.stringify(reordered, null, 2))), baseHash);
    // The bundled file is stable too.
    assert.equal(genesisHashHex(parseGenesis(BUNDLED)), genesisHashHex(parseGenesis(JSON.stringify(JSON.parse(BUNDLED)))));
  });
});

describe('genesis: duplicate members', () => {
  it('refuses a member named twice, at the top level or in alloc (parsers disagree on which wins)', () => {
    const text = readFileSync(new URL('../genesis.json', import.meta.url), 'utf8');
    const twiceReward = text.replace('"reward": "5000000000",', '"reward": "5000000000", "reward": "1",');
    const twiceAlloc = text.replace('"alloc": {', '"alloc": { "cairn12rqpp3a5l5vef8weqsvd42g9rzmqx4la30zrhz": "1",');
    for (const bad of [twiceReward, twiceAlloc]) {
      assert.notEqual(bad, text);
      assert.throws(() => parseGenesis(bad), (e: unknown) => e instanceof GenesisError && /appears twice/.test(e.message));
    }
    assert.doesNotThrow(() => parseGenesis(text.replace('"name": "cairn-devnet-1"', '"name": "x\\"name\\":"')));
  });
});

describe('genesis: what a refusal says', () => {
  it('names a value that is deeply nested or long, and a syntax error, in one short line, never a RangeError', () => {
    // Found by the files fuzz (test/files-fuzz.test.ts): the message quoted a bad value with
    // JSON.stringify, which threw RangeError on 10,000 nested arrays (cairn init said "Maximum call
    // stack size exceeded"), and JSON.parse's own message quotes the text around the fault, newline
    // and all, of which the CLI prints the first line only.
    const nested = '['.repeat(10_000) + ']'.repeat(10_000);
    const text = JSON.stringify(base());
    for (const [bad, field] of [
      [text.replace('"chainId":42', `"chainId":${nested}`), /"chainId" must be an integer from 0 to 4294967295, got an array$/],
      [text.replace('"reward":"5000"', `"reward":${nested}`), /"reward" must be a decimal string .*, got an array$/],
      [text.replace('"reward":"5000"', `"reward":"${'9'.repeat(100_000)}"`), /"reward" must be .*, got "9{40}"… \(100000 characters\)$/],
      ['\u0000\n  "name": "x"\n}', /^genesis: not valid JSON \(.*\)$/],
      // A byte order mark (Notepad's UTF-8) was "Unexpected token '\ufeff'": a character nobody sees.
      [`\ufeff${text}`, /^genesis: not valid JSON \(it starts with a byte order mark \(U\+FEFF\), which JSON does not allow: save it as UTF-8 without one\)$/],
      // Names of members too: JSON escapes a newline in one, and the message quoted it raw.
      [text.replace('"decimals"', '"deci\\nmals"'), /^genesis: unknown field "deci\\nmals"$/],
      [text.replace('"maxBlockTxs"', '"max\\nBlockTxs"'), /^genesis: unknown field "limits.max\\nBlockTxs"$/],
      [text.replace('"decimals":8', '"deci\\nmals":1,"deci\\nmals":2'), /^genesis: member "deci\\nmals" appears twice in one object$/],
      [text.replace('"alloc":{', '"alloc":{"cairn1\\nx":"1",'), /^genesis: alloc: invalid address "cairn1\\nx": /],
    ] as const) {
      rejected(bad, field);
      assert.throws(() => parseGenesis(bad), (err: Error) => !/[\r\n]/.test(err.message) && err.message.length < 300);
    }
  });
});
