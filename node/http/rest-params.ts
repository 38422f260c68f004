/**
 * What the REST API's routes share (rest.ts, rest-address.ts): the error that becomes a JSON error
 * with a code, and the checks of what a path or a query gives.
 */
import { fromHex } from '../../ledger/bytes.ts';
import { decodeAddress } from '../../ledger/keys.ts';
import type { SharedBody } from './compress.ts';

export type RestAnswer =
  | { readonly json: unknown; readonly status?: number }
  /** JSON made once for many requests (SharedBody). */
  | { readonly shared: SharedBody }
  | { readonly text: string }
  /** A block's or transaction's encoding: named by its hash, the same bytes for ever (a cache may keep them). */
  | { readonly bytes: Uint8Array; readonly immutable: true };

export class RestError extends Error {
  readonly status: number;
  readonly code: string;
  /** When to ask again (a `Retry-After` header), for an answer that a later one may not share. */
  readonly retryAfterSeconds: number | undefined;
  constructor(status: number, code: string, message: string, retryAfterSeconds?: number) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

export const notFound = (what: string) => new RestError(404, 'NOT_FOUND', what);
export const bad = (message: string) => new RestError(400, 'BAD_REQUEST', message);

/** A hash or id as a path gives it: 64 hex digits, in either case (Esplora takes upper case too). */
export function hashParam(text: string, what: string): Uint8Array {
  if (!isHashText(text)) throw bad(`${what} must be 64 hex digits`);
  return fromHex(text.toLowerCase());
}

export const isHashText = (text: string): boolean => /^[0-9a-fA-F]{64}$/.test(text);

/** A height, or another count from 0 (`what` says which), as a path gives it. */
export function heightParam(text: string, what = 'a height'): number {
  if (!/^\d{1,10}$/.test(text) || Number(text) > 0xffffffff) throw bad(`${what} is a non-negative integer`);
  return Number(text);
}

/**
 * An address as a path gives it: lower case, or all upper case (BIP 350 allows it, as QR codes
 * carry it, and Esplora takes it); mixed case stays refused.
 */
export function addressParam(text: string): Uint8Array {
  try {
    return decodeAddress(text === text.toUpperCase() ? text.toLowerCase() : text);
  } catch (err) {
    throw bad(`not an address: ${(err as Error).message}`);
  }
}

export function intQuery(query: URLSearchParams, name: string, fallback: number, min: number, max: number): number {
  const text = query.get(name);
  if (text === null) return fallback;
  if (!/^\d{1,7}$/.test(text) || Number(text) < min || Number(text) > max) throw bad(`"${name}" must be an integer from ${min} to ${max}`);
  return Number(text);
}
