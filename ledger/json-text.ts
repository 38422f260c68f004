/**
 * What an error message may say of a JSON file someone else wrote (genesis.json, a key file, a
 * proof file, the node's own files after a bad disk): one line, short, and never a throw of its
 * own. JSON.stringify of a value read from such a file threw RangeError on 10,000 nested arrays
 * (the CLI's "a bug in cairn"), and copied a 100 MB string whole; JSON.parse's message quotes the
 * text near the fault, newlines and all, and the CLI prints the first line of a message only.
 */

/** The longest piece of a string shown. */
const MAX_SHOWN = 40;

/** A value read from JSON, as an error message names it: `"abc"`, `12`, `null`, `an array`, `an object`. */
export function jsonValueText(value: unknown): string {
  if (typeof value === 'string') return value.length <= MAX_SHOWN ? JSON.stringify(value) : `${JSON.stringify(value.slice(0, MAX_SHOWN))}… (${value.length} characters)`;
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  if (Array.isArray(value)) return 'an array';
  return value === undefined ? 'nothing' : 'an object';
}

/**
 * Why JSON.parse refused `text`, on one line. A byte order mark (what some editors put first) is
 * named: the parser's "Unexpected token '\ufeff'" quoted a character nobody sees.
 */
export function jsonParseReason(err: unknown, text: string): string {
  if (text.startsWith('\ufeff')) return 'it starts with a byte order mark (U+FEFF), which JSON does not allow: save it as UTF-8 without one';
  return (err instanceof Error ? err.message : String(err)).replace(/\s*[\r\n]+\s*/g, ' ');
}
