import { randomInt } from 'node:crypto';
import { GenesisError } from '../ledger/errors.ts';
import { genesisHashHex, genesisJson, parseGenesis, type ChainParams } from '../ledger/genesis.ts';
import { MAX_DECIMALS } from '../ledger/amount.ts';
import { maxFutureDrift } from '../consensus/header-rules.ts';
import { address, amountArg, count, parse, required, resolveAmount, str, UsageError } from './args.ts';
import type { Out } from './output.ts';

/**
 * What a new network gets unless told otherwise: the devnet's rules (genesis.json), which a laptop
 * mines a block of in a few seconds on one thread (2^22 hashes a block at the start).
 */
const DEFAULTS = {
  target: '0x000003ffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
  blockTime: 5,
  /** Half-lives, in blocks: the devnet's 120 s at 5 s blocks. */
  halfLifeBlocks: 24,
  rewardCoins: 50n,
  unit: 'CRN',
  decimals: 8,
  maxBlockBytes: 1_048_576,
  maxBlockTxs: 5000,
};

/** The devnet's chain id: a new network takes another, so that no devnet transaction replays on it. */
const DEVNET_CHAIN_ID = 1337;

/** Which flag sets each genesis member, to name the flag in a refusal. */
const FLAG_OF: Record<string, string> = {
  name: '--name', chainId: '--chain-id', timestamp: '--timestamp', target: '--target', blockTime: '--block-time',
  asertHalfLife: '--half-life', reward: '--reward', unit: '--unit', decimals: '--decimals',
  'limits.maxBlockBytes': '--max-block-bytes', 'limits.maxBlockTxs': '--max-block-txs', alloc: '--alloc',
};

/**
 * The parameters of a new network from `cairn genesis new`'s flags: `now` (seconds) dates it, and
 * `randomChainId` gives it a chain id of its own. Every rule of genesis.json is checked by reading
 * the result back with parseGenesis, so a file this writes is one every node accepts.
 */
export function newGenesis(values: Record<string, unknown>, now: number, randomChainId: () => number): ChainParams {
  const decimals = count(values, 'decimals', 0, MAX_DECIMALS) ?? DEFAULTS.decimals;
  const unit = (str(values, 'unit') ?? DEFAULTS.unit).toUpperCase();
  const coin = { unit, decimals };
  const blockTime = count(values, 'block-time', 1, 86_400) ?? DEFAULTS.blockTime;
  const rewardText = str(values, 'reward');
  const allocs = new Map<string, string>();
  for (const entry of (values.alloc as string[] | undefined) ?? []) {
    const at = entry.indexOf('=');
    if (at < 0) throw new UsageError(`--alloc takes ADDRESS=AMOUNT (cairn1…=1000${unit}), got "${entry}"`);
    const text = entry.slice(0, at);
    address(text, '--alloc address');
    // Two entries for one address would be one member of alloc, and the first amount lost.
    if (allocs.has(text)) throw new UsageError(`--alloc gives ${text} twice: give each address once, with its whole amount`);
    allocs.set(text, resolveAmount(amountArg(entry.slice(at + 1), '--alloc amount'), coin, `--alloc amount for ${text}`).toString());
  }
  const target = str(values, 'target') ?? DEFAULTS.target;
  const timestamp = count(values, 'timestamp', 0, 2 ** 48);
  // Block 1 comes after it, and peers take no block further ahead of their clocks than the
  // drift: a network dated later mines nothing until then (a timestamp in milliseconds, for
  // millennia), whatever every node of it does.
  if (timestamp !== undefined && timestamp > now + maxFutureDrift(blockTime)) {
    const inSeconds = Math.floor(timestamp / 1000);
    const why = Math.abs(inSeconds - now) <= 366 * 86_400 ? `: it is in milliseconds; in seconds it is ${inSeconds}` : '';
    throw new UsageError(`--timestamp ${timestamp} is ${timestamp > 8_640_000_000_000 ? 'beyond the year 275760' : new Date(timestamp * 1000).toISOString()}, ${timestamp - now} s ahead of now, and no block can be mined before it${why} (seconds since 1970; leave it out for now)`);
  }
  const json = {
    name: required(values, 'name'),
    chainId: count(values, 'chain-id', 0, 0xffffffff) ?? randomChainId(),
    timestamp: timestamp ?? now,
    target: target.toLowerCase(),
    blockTime,
    asertHalfLife: count(values, 'half-life', 1, 365 * 86_400) ?? Math.min(DEFAULTS.halfLifeBlocks * blockTime, 365 * 86_400),
    reward: (rewardText === undefined ? DEFAULTS.rewardCoins * 10n ** BigInt(decimals) : resolveAmount(amountArg(rewardText, '--reward'), coin, '--reward')).toString(),
    unit,
    decimals,
    limits: {
      maxBlockBytes: count(values, 'max-block-bytes', 0, 2 ** 32) ?? DEFAULTS.maxBlockBytes,
      maxBlockTxs: count(values, 'max-block-txs', 0, 2 ** 32) ?? DEFAULTS.maxBlockTxs,
    },
    alloc: Object.fromEntries(allocs),
  };
  try {
    return parseGenesis(JSON.stringify(json));
  } catch (err) {
    if (!(err instanceof GenesisError)) throw err;
    const why = err.message.replace(/^genesis: /, '').replace(/"([a-zA-Z.]+)"/g, (quoted, field: string) => FLAG_OF[field] ?? quoted);
    throw new UsageError(why);
  }
}

/** A chain id no other network is likely to have: random, and never the devnet's. */
function randomChainId(): number {
  for (;;) {
    const id = randomInt(1, 0xffffffff);
    if (id !== DEVNET_CHAIN_ID) return id;
  }
}

export async function genesisCommand(argv: string[], out: Out): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub === '--help' || sub === '-h') return out.help(HELP);
  // `cairn genesis > net.json` had the help in net.json, status 0, for init to refuse as not JSON.
  if (sub === undefined) throw new UsageError('say what to do: cairn genesis new --name NAME … > genesis.json');
  if (sub !== 'new') throw new UsageError(`unknown genesis command "${sub}": cairn genesis new …`);
  const { values } = parse(rest, {
    name: { type: 'string' },
    alloc: { type: 'string', multiple: true },
    'chain-id': { type: 'string' },
    timestamp: { type: 'string' },
    target: { type: 'string' },
    'block-time': { type: 'string' },
    'half-life': { type: 'string' },
    reward: { type: 'string' },
    unit: { type: 'string' },
    decimals: { type: 'string' },
    'max-block-bytes': { type: 'string' },
    'max-block-txs': { type: 'string' },
    json: { type: 'boolean' },
  });
  if (values.help) return out.help(HELP);
  const params = newGenesis(values, Math.floor(Date.now() / 1000), randomChainId);
  const text = genesisJson(params);
  out.result(JSON.parse(text), text.trimEnd());
  process.stderr.write(`network ${params.name}, chain id ${params.chainId}, genesis ${genesisHashHex(params)}: give every node this file (cairn init --genesis FILE)\n`);
}

const HELP = `Usage: cairn genesis new --name NAME [--alloc ADDRESS=AMOUNT]... [options] [--json] > genesis.json

Writes the genesis file of a new network to stdout: the file every node of the network is
started with (cairn init --genesis FILE, or cairn node --genesis FILE), byte for byte the same
rules at each (its hash names the network: a node with another file is refused as another
network). Every value is checked as a node checks it. The defaults are the devnet's rules, so a
laptop mines a block in a few seconds; the network is dated now, and gets a random chain id, so
that a transaction signed for another network is never valid on it.

  --name NAME             the network's name, 1 to 64 printable ASCII characters, no spaces
  --alloc ADDRESS=AMOUNT  a starting balance (repeatable; once per address): base units (1500)
                          or coins (1000CRN); an address from cairn keys new
  --chain-id N            0 to 4294967295 (default: random, never the devnet's 1337)
  --timestamp SECONDS     the genesis block's time, seconds since 1970 (default: now); no block
                          can be mined before it, so not one in the future
  --target HEX            the first blocks' proof-of-work target, 0x and up to 64 lower-case hex
                          digits; smaller is harder (default ${DEFAULTS.target.slice(0, 12)}…, 2^22 hashes a block)
  --block-time SECONDS    the intended time between blocks, 1 to 86400 (default ${DEFAULTS.blockTime})
  --half-life SECONDS     how fast difficulty follows the hash rate (ASERT's half-life; default
                          ${DEFAULTS.halfLifeBlocks} block times)
  --reward AMOUNT         each block's reward, base units or coins (default ${DEFAULTS.rewardCoins} coins)
  --unit UNIT             the coin's name, 1 to 8 letters or digits (default ${DEFAULTS.unit})
  --decimals N            base units in one coin, as a power of ten, 0 to ${MAX_DECIMALS} (default ${DEFAULTS.decimals})
  --max-block-bytes N     the largest block (default ${DEFAULTS.maxBlockBytes})
  --max-block-txs N       the most transactions in a block (default ${DEFAULTS.maxBlockTxs})

The file is JSON either way (--json changes nothing). docs/PROTOCOL.md ("genesis.json") gives
every member's rule.

Example, a network whose coins start with one key of yours:
  ME=$(cairn keys new --keystore ./keys)
  cairn genesis new --name my-net-1 --alloc "$ME=1000000CRN" > my-net.json
  cairn node --datadir ./my-net --genesis my-net.json --mine`;
