/**
 * Amounts for people: base units shown as coins (trimmed decimals), and coins typed back into
 * base units, exactly; the CLI's amount arguments, where a bare integer stays base units.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MAX_AMOUNT, MAX_DECIMALS, formatUnits, parseUnits } from '../ledger/amount.ts';
import { amount, amountArg, resolveAmount, UsageError } from '../cli/args.ts';
import { coins } from '../cli/output.ts';

const CRN = { unit: 'CRN', decimals: 8 };

describe('amounts in coins', () => {
  it('formats base units as trimmed decimals', () => {
    const cases: [bigint, number, string][] = [
      [0n, 8, '0'], [1n, 8, '0.00000001'], [150_000_000n, 8, '1.5'], [100_000_000_000n, 8, '1000'],
      [1_000_000_000_000_000_000n, 8, '10000000000'], [MAX_AMOUNT, 8, '92233720368.54775807'],
      [1234n, 0, '1234'], [MAX_AMOUNT, 18, '9.223372036854775807'], [5n, 18, '0.000000000000000005'],
    ];
    for (const [value, decimals, text] of cases) assert.equal(formatUnits(value, decimals), text, `${value} with ${decimals}`);
    assert.equal(coins('1250000000', CRN), '12.5 CRN');
  });

  it('reads coins back to the same base units, for every amount and every number of decimals', () => {
    fc.assert(fc.property(fc.bigInt({ min: 0n, max: MAX_AMOUNT }), fc.integer({ min: 0, max: MAX_DECIMALS }), (value, decimals) => {
      assert.equal(parseUnits(formatUnits(value, decimals), decimals), value);
    }));
  });

  it('refuses more decimals than the coin has, signs, exponents and values over MAX_AMOUNT', () => {
    for (const text of ['0.000000001', '-1', '1e3', '1.', '.5', '01.5', ' 1', '92233720368.54775808', '']) {
      assert.equal(parseUnits(text, 8), undefined, text);
    }
    assert.equal(parseUnits('12.5', 8), 1_250_000_000n);
    assert.equal(parseUnits('7', 0), 7n);
  });

  it('--amount: a bare integer is base units; a number with the unit is coins; anything else is refused', () => {
    assert.equal(resolveAmount(amountArg('1500', '--amount'), CRN, '--amount'), 1500n);
    assert.equal(resolveAmount(amountArg('12.5CRN', '--amount'), CRN, '--amount'), 1_250_000_000n);
    assert.equal(resolveAmount(amountArg('12.5 CRN', '--amount'), CRN, '--amount'), 1_250_000_000n);
    assert.equal(resolveAmount(amountArg('3crn', '--amount'), CRN, '--amount'), 300_000_000n);
    const usage = (f: () => unknown, message: RegExp) => assert.throws(f, (e: unknown) => e instanceof UsageError && message.test(e.message));
    usage(() => amountArg('1.5', '--amount'), /^invalid --amount "1\.5": give base units as a whole number \(1500\), or coins with their unit \(12\.5CRN\)$/);
    usage(() => amountArg('0x10', '--fee'), /^invalid --fee "0x10"/);
    usage(() => resolveAmount(amountArg('5BTC', '--amount'), CRN, '--amount'), /this network's unit is CRN/);
    usage(() => resolveAmount(amountArg('0.000000001CRN', '--amount'), CRN, '--amount'), /at most 8 decimals/);
    usage(() => amount('12.5CRN', '--amount'), /invalid --amount/);
  });
});
