/**
 * Amounts are unsigned integers of base units, as bigint: no floats anywhere. The cap keeps every
 * balance, amount and fee inside a signed 64-bit integer, so other implementations and JSON
 * consumers never meet a value they cannot hold; amount + fee is computed in bigint and may not
 * exceed it either.
 */
export const MAX_AMOUNT = (1n << 63n) - 1n;

export function isValidAmount(value: bigint): boolean {
  return value >= 0n && value <= MAX_AMOUNT;
}

/** Parses a plain decimal string of base units ("0", "1500"): no sign, exponent, point or leading zeros. */
export function parseAmount(text: string): bigint | undefined {
  if (typeof text !== 'string' || !/^(0|[1-9][0-9]{0,18})$/.test(text)) return undefined;
  const value = BigInt(text);
  return isValidAmount(value) ? value : undefined;
}
