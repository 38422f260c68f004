import { isIP } from 'node:net';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CairnError } from '../ledger/errors.ts';
import { MAX_AMOUNT, formatUnits, parseAmount, parseUnits } from '../ledger/amount.ts';
import { ADDRESS_PREFIX, decodeAddress } from '../ledger/keys.ts';
import { parseCheckpoint, type Checkpoint } from '../consensus/header-rules.ts';

/** A command line that cannot be run as written: exit status 2, with a pointer to --help. */
export class UsageError extends CairnError {
  constructor(message: string) {
    super('USAGE', message);
  }
}

export type Options = NonNullable<ParseArgsConfig['options']>;

/** Where a node keeps its data unless told otherwise (relative to the working directory). */
export const DEFAULT_DATADIR = 'data';
/** Where a light client keeps its headers and RPC endpoint unless told otherwise. */
export const DEFAULT_LIGHT_DATADIR = 'light';

/**
 * The ports a node and a light client take unless told otherwise. Each its own: the README runs a
 * light client beside a node, and a light client on the node's HTTP port could not start.
 */
export const DEFAULT_PORTS = { p2p: 7370, rpc: 7371, http: 7372, lightRpc: 7373 } as const;

/** Flags every command that talks to a node understands. */
export const NODE_ACCESS: Options = {
  datadir: { type: 'string' },
  rpc: { type: 'string' },
  'rpc-token': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

/** NODE_ACCESS's flags in a command's help (CAIRN_RPC_TOKEN is read where --rpc-token is absent: rpc-client.ts). */
export const NODE_ACCESS_HELP = `  --datadir DIR          the node running on DIR (default ./data)
  --rpc URL --rpc-token T   or a node reached by URL, with the token in its DIR/rpc.json (new at
                         each start; better from CAIRN_RPC_TOKEN: a flag is in the process list,
                         where every user of the machine reads it)
  --json                 machine-readable output (amounts in base units)`;

/**
 * Node's parser explains itself in a paragraph with quotes ("Unknown option '--bogus'. To specify a
 * positional argument starting with a '-', …"); one line naming the option reads better, with the
 * nearest known option when the unknown one looks like a typo.
 */
function parseFailure(err: unknown, options: Options): UsageError {
  const e = err as { code?: string; message: string };
  const given = /'(-[^' ]*)/.exec(e.message)?.[1] ?? '';
  const name = given.replace(/^-+/, '').split('=')[0]!;
  switch (e.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': {
      const near = nearest(name, Object.keys(options).filter((o) => o !== 'help'));
      return new UsageError(`unknown option ${given}${near ? `; did you mean --${near}?` : ''}`);
    }
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return options[name]?.type === 'boolean'
        ? new UsageError(`--${name} takes no value`)
        : new UsageError(`--${name} needs a value (one that starts with "-" is written --${name}=VALUE)`);
    default:
      return new UsageError(e.message.split('\n')[0]!.replace(/\. To specify.*$/, ''));
  }
}

/** The name of `known` nearest `name` when `name` looks like a typo of it (2 edits at most), for "did you mean". */
export function nearest(name: string, known: readonly string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const k of known) {
    const distance = editDistance(k, name);
    if (distance <= 2 && (best === undefined || distance < best.distance)) best = { name: k, distance };
  }
  return best?.name;
}

/** Levenshtein distance, for "did you mean": option and command names are short. */
function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}

/** What unitApart reads of node:util's parse tokens (positionals, options, a --). */
interface ArgToken {
  readonly kind: string;
  readonly index: number;
  readonly value?: string | undefined;
  readonly rawName?: string;
  readonly inlineValue?: boolean | undefined;
}

export function parse(argv: string[], options: Options, positionals = 0) {
  let parsed;
  const all: Options = { help: { type: 'boolean', short: 'h' }, ...options };
  try {
    parsed = parseArgs({ args: argv, options: all, allowPositionals: true, strict: true, tokens: true });
  } catch (err) {
    throw parseFailure(err, all);
  }
  if (!parsed.values.help && parsed.positionals.length > positionals) {
    const stray = parsed.tokens.filter((t) => t.kind === 'positional')[positionals]!;
    throw new UsageError(`unexpected argument "${stray.value}"${unitApart(parsed.tokens, stray)}`);
  }
  for (const [name, value] of Object.entries(parsed.values)) {
    for (const text of Array.isArray(value) ? value : [value]) if (typeof text === 'string') refuseUnexpandedTilde(name, text);
  }
  return parsed as { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] };
}

/**
 * `--amount 12.5 CRN`, as one says it: the unit became an argument of its own, which "unexpected
 * argument" alone left unexplained. Said when the stray word follows a number an option took.
 */
function unitApart(tokens: readonly ArgToken[], stray: ArgToken): string {
  const taker = tokens.find((t) => t.kind === 'option' && t.value !== undefined && t.index + (t.inlineValue ? 0 : 1) === stray.index - 1);
  if (!taker || !/^\d+(\.\d+)?$/.test(taker.value ?? '') || !/^[A-Za-z][A-Za-z0-9]{0,7}$/.test(stray.value ?? '')) return '';
  return `: an amount and its unit are one argument, ${taker.rawName} ${taker.value}${stray.value} (or ${taker.rawName} "${taker.value} ${stray.value}")`;
}

/**
 * A shell expands ~ only at the start of a word: after "=" (--datadir=~/cairn) or in quotes it
 * reaches us as is, and would have made a folder named "~" in the current one, which the next
 * cleanup removes as `rm -rf ~`.
 */
function refuseUnexpandedTilde(name: string, text: string): void {
  if (text !== '~' && !text.startsWith('~/')) return;
  const rest = text.slice(1);
  throw new UsageError(`--${name} "${text}": the shell did not expand ~ (it does not after "=", nor in quotes), and a folder named "~" would be made here: write --${name} ${text} (a space, no quotes), or --${name} "$HOME${rest}"`);
}

export function str(values: Record<string, unknown>, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

export function required(values: Record<string, unknown>, name: string): string {
  const v = str(values, name);
  if (v === undefined || v === '') throw new UsageError(`--${name} is required`);
  return v;
}

export function port(values: Record<string, unknown>, name: string): number | undefined {
  const v = str(values, name);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) > 65535) throw new UsageError(`--${name} must be a port number from 0 to 65535, got "${v}"`);
  return Number(v);
}

export function count(values: Record<string, unknown>, name: string, min: number, max: number): number | undefined {
  const v = str(values, name);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, got "${v}"`);
  return Number(v);
}

/** An amount as typed: base units ("1500"), or whole coins with their unit ("12.5CRN", "12.5 CRN"). */
export type AmountArg = { readonly base: bigint } | { readonly number: string; readonly unit: string; readonly text: string };

const AMOUNT_HINT = 'give base units as a whole number (1500), or coins with their unit (12.5CRN)';

/** Checks an amount's form before any node is asked; `resolveAmount` turns coins into base units. */
export function amountArg(text: string, what: string): AmountArg {
  const base = parseAmount(text);
  if (base !== undefined) return { base };
  const m = /^0[xX]/.test(text) ? null : /^(\d+(?:\.\d+)?) ?([A-Za-z][A-Za-z0-9]{0,7})$/.exec(text.trim());
  if (m) return { number: m[1]!, unit: m[2]!, text };
  throw new UsageError(`invalid ${what} "${text}": ${AMOUNT_HINT}`);
}

/** Base units of `arg` on a network whose coin is `coin`. */
export function resolveAmount(arg: AmountArg, coin: { unit: string; decimals: number }, what: string): bigint {
  if ('base' in arg) return arg.base;
  if (arg.unit.toUpperCase() !== coin.unit) throw new UsageError(`invalid ${what} "${arg.text}": this network's unit is ${coin.unit}`);
  const value = parseUnits(arg.number, coin.decimals);
  if (value === undefined) throw new UsageError(`invalid ${what} "${arg.text}": at most ${coin.decimals} decimals, and no more than ${formatUnits(MAX_AMOUNT, coin.decimals)} ${coin.unit}`);
  return value;
}

/** An amount that must be base units (no node to say what a coin is). */
export function amount(text: string, what: string): bigint {
  const value = parseAmount(text);
  if (value === undefined) throw new UsageError(`invalid ${what} "${text}": ${AMOUNT_HINT}`);
  return value;
}

export function address(text: string, what: string): Uint8Array {
  try {
    return decodeAddress(text);
  } catch {
    // Something else pasted (an 0x… or hex key, another chain's address): the decoder's why
    // ("address must be lower case", "invalid separator") sent the user after the wrong fault.
    if (!text.toLowerCase().startsWith(`${ADDRESS_PREFIX}1`)) throw new UsageError(`invalid ${what} "${text}": not a Cairn address, which is ${ADDRESS_PREFIX}1 and ${ADDRESS_DATA_LENGTH} more letters and digits (cairn keys list shows yours)`);
    throw new UsageError(`invalid ${what} "${text}": ${addressFault(text)}`);
  }
}

/** The letters bech32 writes an address's data in: no 1, b, i or o, which are easily misread. */
const BECH32_LETTERS = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
/** After `cairn1`: 20 bytes in 32 letters of 5 bits, and 6 of checksum. */
const ADDRESS_DATA_LENGTH = 38;

/**
 * What is wrong with a text that starts as an address does, in the terms of its fix. The decoder's
 * own words ("Invalid checksum in …", "invalid data length", "Unknown letter") name its internals;
 * a person holding a mistyped or half-pasted address needs to know to copy it again.
 */
function addressFault(text: string): string {
  const again = 'copy the address again (cairn keys list shows yours)';
  const lower = text.toLowerCase();
  if (text !== lower && text !== text.toUpperCase()) return `it mixes capitals and small letters: ${again}`;
  const data = lower.slice(ADDRESS_PREFIX.length + 1);
  const stranger = [...data].findIndex((c) => !BECH32_LETTERS.includes(c));
  if (stranger >= 0) return `"${data[stranger]}" (character ${ADDRESS_PREFIX.length + 2 + stranger}) is not in any address, which has no 1, b, i or o after ${ADDRESS_PREFIX}1: ${again}`;
  if (data.length !== ADDRESS_DATA_LENGTH) return `it has ${data.length} characters after ${ADDRESS_PREFIX}1, where an address has ${ADDRESS_DATA_LENGTH}: ${data.length < ADDRESS_DATA_LENGTH ? 'some are missing' : 'some are extra'}; ${again}`;
  if (text !== lower) {
    try {
      decodeAddress(lower);
      return `an address is written in small letters: give "${lower}"`;
    } catch {
      return `it is in capitals, where an address is in small letters, and its checksum does not match either, so a character is mistyped: ${again}`;
    }
  }
  return `its checksum does not match, so a character is mistyped: ${again}`;
}

/**
 * The multiaddr to listen for peers on `host` (an IPv4 or IPv6 address, as --p2p-host takes it)
 * and `port`; `from` names where the host came from. Checked before anything is created: libp2p
 * would refuse a name or an IPv6 address given as /ip4 only once the datadir exists.
 */
export function listenAddress(host: string, port: number, from = '--p2p-host'): string {
  switch (isIP(host)) {
    case 4:
      return `/ip4/${host}/tcp/${port}`;
    case 6:
      return `/ip6/${host}/tcp/${port}`;
    default:
      throw new UsageError(`${from} must be an IP address, got "${host}": 127.0.0.1 (or ::1) for this machine only, 0.0.0.0 (or ::) for all its addresses`);
  }
}

/**
 * The names `--FLAG` gives (repeatable): host names as a Host header carries them, or `*`. A URL
 * or a host:port would never match a request's name, and every request would be refused.
 */
export function hostNames(values: Record<string, unknown>, flag: string): string[] {
  const given = (values[flag] as string[] | undefined) ?? [];
  for (const name of given) {
    if (name !== '*' && !/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?$/i.test(name)) {
      throw new UsageError(`--${flag} must be a host name such as explorer.example (no scheme, port or path), or *; got "${name}"`);
    }
  }
  return given;
}

/** `--checkpoint HEIGHT:HASH`, a block the user trusts: cairn verify's and cairn light's. */
export function checkpointArg(text: string | undefined): Checkpoint | undefined {
  if (text === undefined) return undefined;
  const checkpoint = parseCheckpoint(text);
  if (!checkpoint) throw new UsageError('--checkpoint must be HEIGHT:HASH (a block you trust, e.g. from cairn block HEIGHT on a node of your own)');
  return checkpoint;
}
