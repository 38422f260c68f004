/**
 * Answers gzipped for clients that take it (`Accept-Encoding: gzip`), the REST API's and the
 * JSON-RPC's: a page of blocks, an address's lines or a mempool's ids are hex and JSON, which
 * gzip halves or better. Not the event stream, whose events must reach the client as they come.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';

/** Below about one TCP segment, a compressed answer saves no packet and costs a compression. */
export const GZIP_MIN_BYTES = 1400;
/**
 * Compressions under way at most, in the process. They run on libuv's threads, which the store's
 * reads share: a full mempool's ids take 0.4 s to gzip, and clients asking for them faster than
 * that would keep every thread busy. Beyond this, an answer goes as it is (gzip is the client's
 * option, not its due).
 */
export const MAX_COMPRESSING = 2;

const gzipped = promisify(gzip);
let compressing = 0;

/** The body of an answer made once and sent to many: its gzip too is made once, when first asked for. */
export class SharedBody {
  readonly bytes: Buffer;
  private packed: Promise<Buffer | undefined> | undefined;

  constructor(text: string) {
    this.bytes = Buffer.from(text, 'utf8');
  }

  gzipped(): Promise<Buffer | undefined> {
    // Not kept when none was made (the compressions were all taken): the next asker tries again.
    this.packed ??= compress(this.bytes).then((packed) => {
      if (!packed) this.packed = undefined;
      return packed;
    });
    return this.packed;
  }
}

/** Whether an Accept-Encoding header takes gzip: named (or `*`, unless gzip is named) with a q above 0. */
export function acceptsGzip(header: string | undefined): boolean {
  if (header === undefined) return false;
  let any = false;
  for (const part of header.split(',')) {
    const [name, ...options] = part.trim().toLowerCase().split(';');
    const q = options.map((o) => o.trim()).find((o) => o.startsWith('q='));
    const taken = q === undefined || Number(q.slice(2)) > 0;
    if (name === 'gzip' || name === 'x-gzip') return taken;
    if (name === '*') any = taken;
  }
  return any;
}

/** `bytes` gzipped; undefined when MAX_COMPRESSING are under way, or it failed. */
async function compress(bytes: Uint8Array): Promise<Buffer | undefined> {
  if (compressing >= MAX_COMPRESSING) return undefined;
  compressing++;
  try {
    return await gzipped(bytes);
  } catch {
    return undefined;
  } finally {
    compressing--;
  }
}

/**
 * Ends `res` with `status`, `headers` and `body`, gzipped when the client takes it and the body is
 * at least GZIP_MIN_BYTES. Such an answer says `Vary: Accept-Encoding` whether gzipped or not, so
 * that a cache does not hand one client the form another asked for.
 */
export async function endAnswer(req: IncomingMessage, res: ServerResponse, status: number, headers: OutgoingHttpHeaders, body: string | Uint8Array | SharedBody): Promise<void> {
  const bytes = body instanceof SharedBody ? body.bytes : typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  if (bytes.length < GZIP_MIN_BYTES) {
    res.writeHead(status, headers);
    res.end(bytes);
    return;
  }
  const vary = headers.vary ? `${String(headers.vary)}, accept-encoding` : 'accept-encoding';
  const taken = acceptsGzip(req.headers['accept-encoding']);
  const packed = !taken ? undefined : body instanceof SharedBody ? await body.gzipped() : await compress(bytes);
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, packed ? { ...headers, vary, 'content-encoding': 'gzip' } : { ...headers, vary });
  res.end(packed ?? bytes);
}
