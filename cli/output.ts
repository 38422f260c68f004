import { formatUnits } from '../ledger/amount.ts';
import { fileReason } from '../node/file-errors.ts';

/** Where a command's answer goes: JSON for scripts with --json, lines for people otherwise. */
export interface Out {
  readonly json: boolean;
  /**
   * `human` may be a function, called only when it is printed: text built from fields that
   * `--json` does not need must not be able to fail a `--json` run.
   */
  result(data: unknown, human: string | (() => string)): void;
  help(text: string): void;
  /**
   * A list, one item a line for people: when empty, `empty` says so (and what to do) on stderr and
   * stdout stays empty, where a script reading lines (`for a in $(cairn keys list …)`) took the
   * words of "(no keys in …)" for items; --json prints [] either way.
   */
  list(items: readonly unknown[], human: () => string[], empty: string): void;
  /**
   * A line of the answer as it is, with or without --json: one whose format is its own (a proof
   * file is JSON either way), or one said before the result (send --wait's id, at once).
   */
  text(text: string): void;
}

export function createOut(json: boolean, write: (text: string) => void = (t) => process.stdout.write(t), note: (text: string) => void = (t) => process.stderr.write(t)): Out {
  return {
    json,
    result(data, human) {
      write((json ? JSON.stringify(data, null, 2) : typeof human === 'function' ? human() : human) + '\n');
    },
    help(text) {
      write(text + '\n');
    },
    text(text) {
      write(text + '\n');
    },
    list(items, human, empty) {
      if (items.length === 0) note(empty + '\n');
      if (json) write(JSON.stringify(items, null, 2) + '\n');
      else if (items.length > 0) write(human().join('\n') + '\n');
    },
  };
}

/** Where the answer goes: stdout, each write's failure kept (the first) for the exit status. */
export interface AnswerWriter {
  write(text: string): void;
  failure(): NodeJS.ErrnoException | undefined;
}

/**
 * Node reports a failed write to stdout as an 'error' event, after the write returned. Unheard,
 * it ended the process with a stack when the reader had gone (`cairn send --wait | head -1`, the
 * id read, the confirmation written to nobody); where the process exited first, a full disk
 * (`cairn proof … > proof.json`) lost the answer with exit status 0.
 */
export function answerWriter(stream: NodeJS.WritableStream = process.stdout): AnswerWriter {
  let failed: NodeJS.ErrnoException | undefined;
  return {
    write(text) {
      stream.write(text, (err) => void (failed ??= err ?? undefined));
    },
    failure: () => failed,
  };
}

/**
 * What stderr says of an answer that could not be written, if anything: a reader that stopped
 * reading (EPIPE: `| head -1`) took what it wanted, and the command's own status stands (what it
 * did: a transfer sent or not); anything else (a full disk, a device that failed) lost the
 * answer, and the command fails.
 */
export function answerFailureText(err: NodeJS.ErrnoException | undefined): string | undefined {
  if (err === undefined || err.code === 'EPIPE') return undefined;
  return `cairn: the answer could not be written to stdout: ${fileReason(err)}\n`;
}

/**
 * What stderr says of a command that failed. An expected failure (a usage error, a node that is
 * not running, an unknown transaction) is one line of ours, no stack; a bug (a TypeError and its
 * kin, however it got here) says so, with its stack: one line without it left nothing to find
 * the bug by. `usageHint` follows a usage error's line ("see cairn send --help").
 */
export function failureText(err: unknown, usageError: boolean, usageHint: string): string {
  const message = err instanceof Error ? err.message : String(err);
  const first = message.split('\n')[0];
  if (isBug(err)) return `cairn: internal error: ${first} (a bug in cairn: please report it, with these lines)\n${err.stack ?? message}\n`;
  return `cairn: ${first}${usageError ? ` (${usageHint})` : ''}\n`;
}

/** JavaScript's programming errors: what no input of the user's should cause, only our code. */
function isBug(err: unknown): err is Error {
  return err instanceof TypeError || err instanceof ReferenceError || err instanceof RangeError || err instanceof SyntaxError || err instanceof EvalError;
}

/** A table of label/value lines, aligned. */
export function lines(rows: [string, string | number | boolean | null][]): string {
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v ?? '-'}`).join('\n');
}

/** What a network calls its coin: from `status` (unit, decimals). */
export interface Coin {
  readonly unit: string;
  readonly decimals: number;
}

/** Base units (a decimal string or bigint) as people read them: "12.5 CRN". JSON keeps base units. */
export function coins(baseUnits: string | bigint, coin: Coin): string {
  return `${formatUnits(BigInt(baseUnits), coin.decimals)} ${coin.unit}`;
}

/** Seconds as "42 s", "3 min", "5 h", "2 d": how long ago, to the unit that matters. */
export function duration(seconds: number): string {
  if (seconds < 120) return `${Math.max(0, Math.round(seconds))} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86_400)} d`;
}

/**
 * A large count with an SI prefix and its unit: (4194304, 'H/s') → "4.19 MH/s", (0, 'H/s') → "0 H/s"
 * (the unit put after a bare prefix read "0H/s" beside "2.41 MH/s"); (4194304, '') → "4.19 M".
 */
export function si(value: number, unit: string): string {
  const prefixes = ['', 'k', 'M', 'G', 'T', 'P', 'E', 'Z', 'Y'];
  let i = 0;
  while (Math.abs(value) >= 1000 && i < prefixes.length - 1) {
    value /= 1000;
    i++;
  }
  return (i === 0 ? `${Math.round(value)} ${unit}` : `${value.toFixed(value < 10 ? 2 : value < 100 ? 1 : 0)} ${prefixes[i]}${unit}`).trimEnd();
}
