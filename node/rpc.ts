import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CairnError, StoreError } from '../ledger/errors.ts';
import { RPC_ENDPOINT_FILE, RPC_ERRORS, type RpcEndpointFile } from './rpc-types.ts';
import { rpcHandlers } from './rpc-methods.ts';
import { RpcError } from './rpc-params.ts';
import { ReorganisingError } from './reorg-wait.ts';
import { methodDoc, RPC_DOC } from './rpc-doc.ts';
import { validate } from './json-schema.ts';
import type { NodeView } from './view.ts';
import { localUrl } from './http/local-url.ts';
import { endAnswer } from './http/compress.ts';
import { cutStalledWrites, WRITE_TIMEOUT_MS } from './http/write-timeout.ts';
import { replaceFile } from './durable-file.ts';
import { exactId, MAX_ID_TEXT, paramsByPosition, parseRpcBody, type RpcId } from './rpc-body.ts';

export const MAX_RPC_BODY_BYTES = 1 << 20;
export const MAX_BATCH = 1000;
/**
 * The answers of one batch, in bytes of JSON, past which its requests not yet run are refused
 * (ANSWER_TOO_LARGE) rather than run: a body of 60 KB asking 1,000 times for 2,000 headers made
 * an answer of 600 MB, past the longest string V8 makes, after the node had held it all.
 */
export const MAX_BATCH_ANSWER_BYTES = 16 * 1024 * 1024;
/** Requests of one batch run at once: all 1,000 at once held all their answers before one was counted. */
export const BATCH_RUNNING = 8;
/**
 * Open connections: each holds a file descriptor until its headers time out, and a process of
 * another user on this machine needs no token to open them; uncapped, it could take every
 * descriptor the node has, its store's and its peers' too. Well above what a client's burst
 * keeps open (fetch opens a connection per request in flight: 200 at once must all be answered),
 * since one over the cap is cut as it arrives.
 */
export const MAX_RPC_CONNECTIONS = 1024;

interface RpcRequest {
  jsonrpc: '2.0';
  id?: string | number | null;
  method: string;
  params?: unknown;
}

type RpcResponse =
  | { jsonrpc: '2.0'; id: RpcId; result: unknown }
  | { jsonrpc: '2.0'; id: RpcId; error: { code: number; message: string; data?: unknown } };

function failure(id: RpcId | undefined, code: number, message: string, data?: unknown): RpcResponse {
  return { jsonrpc: '2.0', id: id ?? null, error: data === undefined ? { code, message } : { code, message, data } };
}

export interface RpcServerOptions {
  /** Where the endpoint file goes, for the CLI to find. */
  datadir: string;
  host?: string;
  port?: number;
  token?: string;
  /** Told each known method's answer time (the metrics' RPC latency). */
  observe?: (method: string, seconds: number) => void;
  /** What is wrong with a method's params, undefined when nothing is (checked before the handler runs). */
  checkParams?: (method: string, params: Record<string, unknown>) => string | undefined;
  /**
   * The names of a method's params in their order, which params given by position (an array)
   * stand for; undefined for a method that takes them by name only (every method, unless given).
   */
  paramNames?: (method: string) => readonly string[] | undefined;
  /**
   * Where a failure on our side is told, with its stack (a bug: anything but an RpcError or a
   * CairnError): the client is answered INTERNAL_ERROR with its message alone.
   */
  log?: (level: 'warn', message: string, fields?: Record<string, unknown>) => void;
  /** Open connections at most (MAX_RPC_CONNECTIONS unless given; tests lower it). */
  maxConnections?: number;
  /** How long an answer may wait on a client that reads none of it before its connection is cut (WRITE_TIMEOUT_MS; tests lower it). */
  writeTimeoutMs?: number;
  /** Where a browser that opened this port should go instead (the explorer's address), told at the time it asks. */
  elsewhere?: () => string | undefined;
}

/**
 * What this port is, for a client that is no JSON-RPC one (a browser: a GET, no token): "missing
 * or wrong RPC token" told it neither what speaks here nor where the pages it wanted are. The
 * token is named by the file that holds it, never given.
 */
export function notJsonRpcText(elsewhere: string | undefined): string {
  return `this port answers JSON-RPC 2.0 over POST, each request with the header "Authorization: Bearer TOKEN", the TOKEN from rpc.json in the datadir (cairn commands read it there; cairn help rpc lists the methods)${elsewhere ? `; ${elsewhere}` : ''}`;
}

/** A method table over some context: the node's (`rpcHandlers`) or a light client's. */
export type RpcHandlers<C> = Record<string, (context: C, params: Record<string, unknown>) => Promise<unknown>>;

/**
 * JSON-RPC 2.0 over HTTP, on 127.0.0.1 unless told otherwise. Every request carries the random
 * token the server wrote to `<datadir>/rpc.json` (mode 0600) as `Authorization: Bearer <token>`;
 * without it, 401. Bodies are capped; malformed JSON, unknown methods and bad parameters are
 * JSON-RPC errors, and nothing a client sends can take the server down. `settle` runs after each
 * answer is made and before it is sent.
 */
export class JsonRpcServer<C> {
  private readonly context: C;
  private readonly handlers: RpcHandlers<C>;
  private readonly settle: (context: C) => Promise<void>;
  private readonly observe: ((method: string, seconds: number) => void) | undefined;
  private readonly checkParams: (method: string, params: Record<string, unknown>) => string | undefined;
  private readonly paramNames: (method: string) => readonly string[] | undefined;
  private readonly log: RpcServerOptions['log'];
  private readonly datadir: string;
  private readonly host: string;
  private readonly port: number;
  private readonly maxConnections: number;
  private readonly writeTimeoutMs: number;
  private readonly elsewhere: () => string | undefined;
  readonly token: string;
  private server: Server | undefined;
  private endpointFile: string | undefined;
  /**
   * Set as the stop begins. A call still running once the stop has cut its connection fails on
   * the store the node's stop goes on to close ("Database is not open"): that is the stop's
   * doing, answered as such, not a failure on our side logged with its stack.
   */
  private stopping = false;
  url = '';

  constructor(
    context: C,
    handlers: RpcHandlers<C>,
    options: RpcServerOptions & { settle?: (context: C) => Promise<void> },
  ) {
    this.context = context;
    this.handlers = handlers;
    this.settle = options.settle ?? (async () => {});
    this.observe = options.observe;
    this.checkParams = options.checkParams ?? (() => undefined);
    this.paramNames = options.paramNames ?? (() => undefined);
    this.log = options.log;
    this.datadir = options.datadir;
    this.host = options.host ?? '127.0.0.1';
    this.port = options.port ?? 0;
    this.maxConnections = options.maxConnections ?? MAX_RPC_CONNECTIONS;
    this.writeTimeoutMs = options.writeTimeoutMs ?? WRITE_TIMEOUT_MS;
    this.elsewhere = options.elsewhere ?? (() => undefined);
    this.token = options.token ?? randomBytes(32).toString('hex');
  }

  async start(): Promise<string> {
    const server = createServer((req, res) => void this.handle(req, res));
    server.requestTimeout = 30_000;
    server.headersTimeout = 10_000;
    server.maxConnections = this.maxConnections;
    cutStalledWrites(server, this.writeTimeoutMs);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, this.host, () => resolve());
    });
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : this.port;
    const url = localUrl(this.host, port);
    const endpointFile = join(this.datadir, RPC_ENDPOINT_FILE);
    const endpoint: RpcEndpointFile = { url, token: this.token, pid: process.pid };
    // Whole or not at all: a CLI must never read half a token. Without it nobody can use the
    // server, so a start that cannot write it (a full disk) fails and leaves no port open.
    await replaceFile(endpointFile, JSON.stringify(endpoint) + '\n').catch(async (err: unknown) => {
      await new Promise((closed) => server.close(closed));
      throw err;
    });
    this.server = server;
    this.url = url;
    this.endpointFile = endpointFile;
    return url;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.endpointFile) await rm(this.endpointFile, { force: true });
    if (!this.server) return;
    // Answers in flight (the one to `stop` among them) are finished; idle keep-alive connections
    // are closed at once, and whatever is still open a second later is cut.
    const server = this.server;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const cut = setTimeout(() => server.closeAllConnections(), 1_000);
    await closed;
    clearTimeout(cut);
  }

  private authorized(req: IncomingMessage): boolean {
    const header = req.headers.authorization ?? '';
    const given = Buffer.from(header.startsWith('Bearer ') ? header.slice(7) : '');
    const expected = Buffer.from(this.token);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const send = async (status: number, body: unknown) => {
      if (res.headersSent) return;
      await endAnswer(req, res, status, { 'content-type': 'application/json' }, JSON.stringify(body));
    };
    // JSON-RPC 2.0: notifications (and a batch of nothing else) get no answer at all.
    const noContent = () => {
      if (res.headersSent) return;
      res.writeHead(204);
      res.end();
    };
    try {
      // The method first: a browser sends no token, and is told what this port is, not that its token is wrong.
      if (req.method !== 'POST') {
        req.resume();
        res.setHeader('allow', 'POST');
        return await send(405, failure(null, RPC_ERRORS.INVALID_REQUEST, notJsonRpcText(this.elsewhere())));
      }
      if (!this.authorized(req)) {
        req.resume();
        return await send(401, failure(null, RPC_ERRORS.INVALID_REQUEST, 'missing or wrong RPC token: send the one in rpc.json in the datadir, as the header "Authorization: Bearer TOKEN" (cairn commands read it there)'));
      }
      const body = await readBody(req, MAX_RPC_BODY_BYTES);
      if (body === undefined) {
        return await send(413, failure(null, RPC_ERRORS.INVALID_REQUEST, `request body over ${MAX_RPC_BODY_BYTES} bytes`));
      }
      let parsed: unknown;
      let idTexts: WeakMap<object, string>;
      try {
        ({ parsed, idTexts } = parseRpcBody(body));
      } catch {
        return await send(200, failure(null, RPC_ERRORS.PARSE_ERROR, 'malformed JSON'));
      }
      if (Array.isArray(parsed)) {
        if (parsed.length === 0 || parsed.length > MAX_BATCH) {
          return await send(200, failure(null, RPC_ERRORS.INVALID_REQUEST, `a batch holds 1 to ${MAX_BATCH} requests`));
        }
        const answers = await this.answerBatch(parsed, idTexts);
        if (answers.length === 0) return noContent();
        if (!res.headersSent) await endAnswer(req, res, 200, { 'content-type': 'application/json' }, `[${answers.join(',')}]`);
        return;
      }
      const answer = await this.dispatch(parsed, idTexts);
      return answer === undefined ? noContent() : await send(200, answer);
    } catch (err) {
      await send(500, failure(null, RPC_ERRORS.INTERNAL_ERROR, (err as Error).message));
    }
  }

  /**
   * A batch's answers as JSON texts, in its order, BATCH_RUNNING requests at a time; once they
   * pass MAX_BATCH_ANSWER_BYTES, each request not yet run is answered ANSWER_TOO_LARGE instead
   * (a notification, which adds nothing to the answer, still runs).
   */
  private async answerBatch(requests: readonly unknown[], idTexts: WeakMap<object, string>): Promise<string[]> {
    const texts: (string | undefined)[] = [];
    let bytes = 0;
    let next = 0;
    const runner = async () => {
      while (next < requests.length) {
        const at = next++;
        const raw = requests[at];
        const answer = await this.dispatch(raw, idTexts, bytes > MAX_BATCH_ANSWER_BYTES && !isNotification(raw));
        if (answer === undefined) continue;
        const text = JSON.stringify(answer);
        bytes += text.length;
        texts[at] = text;
      }
    };
    await Promise.all(Array.from({ length: Math.min(BATCH_RUNNING, requests.length) }, runner));
    return texts.filter((t) => t !== undefined);
  }

  /**
   * The answer to one request; undefined for a notification (a request without an id), which is
   * run but not answered. `overBudget`: a valid request is answered ANSWER_TOO_LARGE, not run.
   */
  private async dispatch(raw: unknown, idTexts: WeakMap<object, string>, overBudget = false): Promise<RpcResponse | undefined> {
    const answer = await this.answer(raw, idTexts, overBudget);
    // An invalid request is answered even without an id (with id null), as JSON-RPC 2.0 says.
    return isNotification(raw) && !('error' in answer && answer.error.code === RPC_ERRORS.INVALID_REQUEST) ? undefined : answer;
  }

  private async answer(raw: unknown, idTexts: WeakMap<object, string>, overBudget: boolean): Promise<RpcResponse> {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      return failure(null, RPC_ERRORS.INVALID_REQUEST, 'a request is a JSON object');
    }
    const r = raw as Partial<RpcRequest>;
    const given = typeof r.id === 'string' || typeof r.id === 'number' ? r.id : null;
    // Any other id would come back as null: a client could not tell its answers apart.
    if (r.id !== undefined && r.id !== null && given === null) return failure(null, RPC_ERRORS.INVALID_REQUEST, 'an "id" is a string, a number or null');
    const id = exactId(raw, given, idTexts);
    if (typeof id === 'object' && id !== null && 'tooLong' in id) {
      return failure(null, RPC_ERRORS.INVALID_REQUEST, `a numeric "id" is at most ${MAX_ID_TEXT} characters, not ${id.tooLong}`);
    }
    if (r.jsonrpc !== '2.0' || typeof r.method !== 'string') {
      return failure(id, RPC_ERRORS.INVALID_REQUEST, 'expected {"jsonrpc":"2.0","method":…}');
    }
    // JSON-RPC 2.0: params, when given, are a structured value; any other makes no valid request
    // (bitcoind's answer too), which is answered even as a notification. A null stands for none.
    if (r.params !== undefined && r.params !== null && typeof r.params !== 'object') {
      return failure(id, RPC_ERRORS.INVALID_REQUEST, 'params, when given, are an object (by name) or an array (by position)');
    }
    if (!Object.hasOwn(this.handlers, r.method)) return failure(id, RPC_ERRORS.METHOD_NOT_FOUND, `unknown method "${r.method}"`);
    let params = r.params ?? {};
    if (Array.isArray(params)) {
      const names = this.paramNames(r.method);
      if (!names) return failure(id, RPC_ERRORS.INVALID_PARAMS, `params must be an object: ${r.method} takes its params by name`);
      const named = paramsByPosition(r.method, names, params);
      if (typeof named === 'string') return failure(id, RPC_ERRORS.INVALID_PARAMS, named);
      params = named;
    }
    const refused = this.checkParams(r.method, params as Record<string, unknown>);
    if (refused) return failure(id, RPC_ERRORS.INVALID_PARAMS, refused);
    if (overBudget) return failure(id, RPC_ERRORS.ANSWER_TOO_LARGE, `not run: this batch's answers before it passed ${MAX_BATCH_ANSWER_BYTES} bytes; ask for it in another batch`);
    const started = performance.now();
    try {
      const handler = this.handlers[r.method]!;
      const result = await handler(this.context, params as Record<string, unknown>);
      await this.settle(this.context);
      return { jsonrpc: '2.0', id, result };
    } catch (err) {
      if (err instanceof RpcError) return failure(id, err.rpcCode, err.message);
      if (err instanceof ReorganisingError) return failure(id, RPC_ERRORS.REORGANISING, err.message, { retryAfterSeconds: err.retryAfterSeconds, height: err.height });
      // A refusal (a balance too low, a fee too small) is the request's, stopping or not; what else
      // fails once the stop began (a store closed under the call) is the stop's.
      const refusal = err instanceof CairnError && !(err instanceof StoreError);
      if (this.stopping && !refusal) return failure(id, RPC_ERRORS.STOPPING, `the node is stopping: ${r.method} was cut short`);
      if (err instanceof CairnError) return failure(id, RPC_ERRORS.REJECTED, err.message, { code: err.code });
      this.internalError(r.method, err);
      return failure(id, RPC_ERRORS.INTERNAL_ERROR, (err as Error).message);
    } finally {
      // Refusals too: a slow failing call is as much the operator's business as a slow answer.
      this.observe?.(r.method, (performance.now() - started) / 1000);
    }
  }

  /** A failure on our side, logged with its stack: the client is told only its message. */
  private internalError(what: string, err: unknown): void {
    this.log?.('warn', `rpc: ${what} failed on our side: ${(err as Error)?.message ?? String(err)}`, { error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  }
}

/** Whether a request is a notification (an object without an id): it is run, never answered. */
function isNotification(raw: unknown): boolean {
  return typeof raw === 'object' && raw !== null && !Array.isArray(raw) && !Object.hasOwn(raw, 'id');
}

/** The node's JSON-RPC server: its method table over a NodeView. */
export class RpcServer extends JsonRpcServer<NodeView> {
  constructor(node: NodeView, options: Omit<RpcServerOptions, 'checkParams' | 'paramNames'>) {
    super(node, rpcHandlers as unknown as RpcHandlers<NodeView>, {
      ...options,
      checkParams,
      paramNames: (method) => methodDoc(method)?.params.map((p) => p.name),
      // Whatever the answer saw (a head, a balance) was queued for the store before it was made:
      // once that is committed, what the user is told survives a crash.
      settle: (n) => n.db.flushed(),
    });
  }
}

/**
 * What is wrong with a method's params by its OpenRPC entry (node/rpc-doc.ts): a name it does not
 * take, a required one missing, a value outside its schema. Undefined when nothing is.
 */
export function checkParams(method: string, params: Record<string, unknown>): string | undefined {
  const doc = methodDoc(method);
  if (!doc) return undefined;
  const takes = doc.params.map((p) => p.name);
  for (const name of Object.keys(params)) {
    if (!takes.includes(name)) return `unknown parameter "${name}": ${method} takes ${takes.length > 0 ? takes.map((t) => `"${t}"`).join(', ') : 'none'}`;
  }
  for (const p of doc.params) {
    if (!Object.hasOwn(params, p.name)) {
      if (p.required) return `"${p.name}" is required (${p.description})`;
      continue;
    }
    const errors = validate(params[p.name], p.schema, RPC_DOC.components.schemas);
    if (errors.length > 0) return `"${p.name}": ${errors[0]!.replace(/^\$:? ?/, '')}`;
  }
  return undefined;
}

/** The body as text, or undefined when it is larger than `limit` (the rest is discarded). */
function readBody(req: IncomingMessage, limit: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) {
      req.resume();
      resolve(undefined);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) over = true;
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(over ? undefined : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
