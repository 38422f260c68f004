import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CairnError } from '../ledger/errors.ts';
import { parseAmount } from '../ledger/amount.ts';
import { decodeAddress } from '../ledger/keys.ts';

/** A command line that cannot be run as written: exit status 2, with a pointer to --help. */
export class UsageError extends CairnError {
  constructor(message: string) {
    super('USAGE', message);
  }
}

export type Options = NonNullable<ParseArgsConfig['options']>;

/** Flags every command that talks to a node understands. */
export const NODE_ACCESS: Options = {
  datadir: { type: 'string' },
  rpc: { type: 'string' },
  'rpc-token': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

export function parse(argv: string[], options: Options, positionals = 0) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { help: { type: 'boolean', short: 'h' }, ...options }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0]!);
  }
  if (!parsed.values.help && parsed.positionals.length > positionals) {
    throw new UsageError(`unexpected argument "${parsed.positionals[positionals]}"`);
  }
  return parsed as { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] };
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

export function amount(text: string, what: string): bigint {
  const value = parseAmount(text);
  if (value === undefined) throw new UsageError(`invalid ${what} "${text}": give a whole number of base units, like 1500`);
  return value;
}

export function address(text: string, what: string): Uint8Array {
  try {
    return decodeAddress(text);
  } catch (err) {
    throw new UsageError(`invalid ${what}: ${(err as Error).message}`);
  }
}
