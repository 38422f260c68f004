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

/** Most decimals a network may give its unit: MAX_AMOUNT has 19 digits, so a whole unit stays countable. */
export const MAX_DECIMALS = 18;

/**
 * Base units as a decimal number of whole units, trailing zeros trimmed: 150000000 with 8 decimals
 * is "1.5", 1 is "0.00000001". The shortest text that `parseUnits` reads back to the same value.
 */
export function formatUnits(value: bigint, decimals: number): string {
  const digits = value.toString().padStart(decimals + 1, '0');
  const whole = digits.slice(0, digits.length - decimals);
  const fraction = digits.slice(digits.length - decimals).replace(/0+$/, '');
  return fraction === '' ? whole : `${whole}.${fraction}`;
}

/**
 * Reads a decimal number of whole units ("12.5", "0.00000001", "1000") into base units; undefined
 * for a sign, an exponent, more fraction digits than `decimals`, or a value over MAX_AMOUNT.
 */
export function parseUnits(text: string, decimals: number): bigint | undefined {
  const m = /^(0|[1-9][0-9]{0,18})(?:\.([0-9]+))?$/.exec(text);
  if (!m || (m[2] !== undefined && m[2].length > decimals)) return undefined;
  const value = BigInt(m[1]!) * 10n ** BigInt(decimals) + BigInt((m[2] ?? '').padEnd(decimals, '0') || '0');
  return isValidAmount(value) ? value : undefined;
}
