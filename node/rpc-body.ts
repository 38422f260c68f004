/**
 * What a JSON-RPC body holds that plain JSON.parse loses or the server would refuse: a numeric id
 * JavaScript cannot hold exactly, kept as the client wrote it, and params given by position, named
 * by the order a method lists them in.
 */

/** An id as it goes back to its client: what it sent, or the text of a number it sent (JSON.rawJSON). */
export type RpcId = string | number | null | { readonly rawJSON: string };

/**
 * A numeric id longer than this is refused: the texts kept are sent back, and a batch of ids a
 * body long would have the answer carry what JSON.parse today rounds to 24 characters or less.
 * 64 holds any 128-bit integer (39 digits) and any double's shortest text with room to spare.
 */
export const MAX_ID_TEXT = 64;

export interface RpcBody {
  readonly parsed: unknown;
  /** The text of each request's numeric id that JSON.parse does not hold exactly, by request object. */
  readonly idTexts: WeakMap<object, string>;
}

const rawJSON = (JSON as unknown as { rawJSON(text: string): { readonly rawJSON: string } }).rawJSON;

const isRequestLike = (r: unknown): r is Record<string, unknown> => typeof r === 'object' && r !== null && !Array.isArray(r);

/** A member "id" with a number: in valid JSON, outside any string (a quote inside one is escaped). */
const NUMERIC_ID = /"id"\s*:\s*(-?[0-9][0-9.eE+-]*)/g;

/**
 * The body parsed (JSON.parse: throws a SyntaxError on malformed JSON). An id such as
 * 12345678901234567891 parses to a double, which would be answered as 12345678901234567000: a
 * client matching answers by id (bitcoind's clients, a uint64 counter) could not find its own.
 * Only for a body holding such an id are the texts of its numeric "id" members read, in the order
 * they stand, each given to the next such request whose id it parses to (a param named "id" that
 * does not is passed over). At most two a request are read, more than an honest body holds, so
 * that a body of a million "id"s costs no more than its parse; a reviver that gives each value's
 * text (JSON.parse's context) cost forty times the parse on a body of numbers.
 */
export function parseRpcBody(body: string): RpcBody {
  const idTexts = new WeakMap<object, string>();
  const parsed: unknown = JSON.parse(body);
  const requests = Array.isArray(parsed) ? parsed : [parsed];
  const inexact = requests.filter((r): r is Record<string, unknown> => isRequestLike(r) && typeof r.id === 'number' && !Number.isSafeInteger(r.id));
  if (inexact.length === 0) return { parsed, idTexts };
  let next = 0;
  let read = 0;
  for (const match of body.matchAll(NUMERIC_ID)) {
    if (next >= inexact.length || ++read > 2 * requests.length + 2) break;
    const text = match[1]!;
    const request = inexact[next]!;
    if (Number(text) !== request.id) continue;
    if (text !== String(request.id)) idTexts.set(request, text);
    next++;
  }
  return { parsed, idTexts };
}

/** The id to answer `request` with: its exact text when JSON.parse rounded it, else the parsed id. */
export function exactId(request: object, id: string | number | null, idTexts: WeakMap<object, string>): RpcId | { readonly tooLong: number } {
  const text = idTexts.get(request);
  if (text === undefined) return id;
  return text.length > MAX_ID_TEXT ? { tooLong: text.length } : rawJSON(text);
}

/**
 * Positional params named by `names`, the order the method lists them in (its OpenRPC entry); a
 * message saying what is wrong when there are more of them than names. A null stands for an
 * optional param left out, as bitcoind takes it (getBlock [null, hash]): no param takes null.
 */
export function paramsByPosition(method: string, names: readonly string[], values: readonly unknown[]): Record<string, unknown> | string {
  if (values.length > names.length) {
    const takes = names.length === 0 ? 'no params' : `at most ${names.length} param${names.length === 1 ? '' : 's'} by position (${names.join(', ')})`;
    return `${method} takes ${takes}, got ${values.length}`;
  }
  const params: Record<string, unknown> = {};
  values.forEach((value, i) => {
    if (value !== null) params[names[i]!] = value;
  });
  return params;
}
