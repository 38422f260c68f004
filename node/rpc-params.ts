import { decodeAddress } from '../ledger/keys.ts';
import { RPC_ERRORS } from './rpc-types.ts';

/**
 * What the RPC's methods check of their params, and the error they answer with: a full node's
 * methods (rpc-methods.ts) and a light client's (light/rpc.ts) alike.
 */

/** An error with a JSON-RPC code: bad parameters, or nothing found. */
export class RpcError extends Error {
  readonly rpcCode: number;
  constructor(rpcCode: number, message: string) {
    super(message);
    this.rpcCode = rpcCode;
  }
}

export const invalid = (message: string) => new RpcError(RPC_ERRORS.INVALID_PARAMS, message);
export const notFound = (message: string) => new RpcError(RPC_ERRORS.NOT_FOUND, message);

export function param<T>(params: Record<string, unknown>, name: string, check: (v: unknown) => v is T, what: string): T {
  const value = params[name];
  if (!check(value)) throw invalid(`"${name}" must be ${what}`);
  return value;
}
export const isString = (v: unknown): v is string => typeof v === 'string';
export const isHash = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);
export const isHeight = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
export const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1 && v <= 1000;

export function addressParam(params: Record<string, unknown>): Uint8Array {
  const text = param(params, 'address', isString, 'an address string');
  try {
    return decodeAddress(text);
  } catch (err) {
    throw invalid((err as Error).message);
  }
}
