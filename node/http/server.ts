import { addressGroup } from '../address-groups.ts';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import type { NodeView } from '../view.ts';
import { BoundedMap } from '../../ledger/bounded.ts';
import { toHex } from '../../ledger/bytes.ts';
import { localUrl } from './local-url.ts';
import { decodeAddress } from '../../ledger/keys.ts';
import { EventFeed, type FeedEvent, type FeedEventType } from './events.ts';
import { allowedMethods, answerRest, RestError, type RestShared } from './rest.ts';
import { StaticFiles } from './static.ts';
import { hostRefused } from './local-host.ts';
import { endAnswer } from './compress.ts';
import { cutStalledWrites, WRITE_TIMEOUT_MS } from './write-timeout.ts';
import { requestTarget } from './request-target.ts';

export interface HttpOptions {
  /** Default 127.0.0.1: the API is open to whoever reaches it, with no token. */
  readonly host?: string;
  readonly port?: number;
  /**
   * Host names besides this machine's that a server on loopback answers (`*`: any), such as a
   * reverse proxy's that passes its own; any other is refused against DNS rebinding (local-host.ts).
   */
  readonly hostNames?: readonly string[];
  /** An origin (or `*`) allowed to call the API from a browser page; none by default. */
  readonly cors?: string;
  /** Requests a client (by remote address) may burst, and then make each second. */
  readonly rateBurst?: number;
  readonly ratePerSecond?: number;
  /** Events kept for clients that reconnect (EventFeed). */
  readonly eventHistory?: number;
  /** Open connections in all (default MAX_CONNECTIONS; tests lower it). */
  readonly maxConnections?: number;
  /** Whether loopback clients count against the streams and connections a client may hold (tests; off: a local proxy speaks for many). */
  readonly limitLoopback?: boolean;
  /**
   * A reverse proxy on this machine speaks for its clients: a request from loopback is counted
   * (its rate, its streams) against the client the proxy names last in `X-Forwarded-For`, not
   * against the proxy itself, whose one bucket every visitor of a published explorer shared.
   */
  readonly trustProxy?: boolean;
  /** How long an answer may wait on a client that reads none of it before its connection is cut (WRITE_TIMEOUT_MS; tests lower it). */
  readonly writeTimeoutMs?: number;
  /** How long a request, headers and body, may take to arrive (REQUEST_TIMEOUT_MS; tests lower it). */
  readonly requestTimeoutMs?: number;
}

/**
 * Node's default is 300 s: a POST /tx whose body came a byte at a time held its connection for
 * five minutes, and a client whose connections are not counted (loopback: a proxy) could hold
 * every one. The RPC server's is the same 30 s. An event stream is a request long arrived.
 */
const REQUEST_TIMEOUT_MS = 30_000;

/** Most request body a POST /tx takes: one transaction in hex is 334 characters. */
const MAX_BODY = 16 * 1024;
const MAX_STREAMS = 200;
/**
 * Event streams one client (by remote address) may hold: one could otherwise take every slot.
 * Loopback is exempt: a reverse proxy on the node's machine speaks for all its clients.
 */
const MAX_STREAMS_PER_CLIENT = 16;
/**
 * Open connections, in all and from one client address (loopback exempt, as for streams). Each
 * holds a file descriptor until its headers time out: without a cap, one client opening sockets
 * faster than they time out takes every descriptor the node has, its store's and its peers' too.
 */
const MAX_CONNECTIONS = 1024;
const MAX_CONNECTIONS_PER_CLIENT = 64;
/** Addresses one event stream may follow. */
export const MAX_TRACKED = 100;
/**
 * A stream whose client reads slower than this much backlog is cut; it resumes by its last id.
 * Every stream may hold this much, so MAX_STREAMS of them bound what slow readers cost.
 */
const MAX_STREAM_BACKLOG = 1024 * 1024;
const KEEPALIVE_MS = 15_000;
/** What a cache may do with bytes named by their hash (a year: RFC 9111's longest advised, as Esplora's). */
const IMMUTABLE = 'public, max-age=31536000, immutable';

/**
 * The node's read-only web face on its own port: the REST API (rest.ts), live events as
 * Server-Sent Events (`/events`), and the explorer's page and assets (`/`, `/assets/…`). A real
 * adapter: it keeps time for rate limits and keep-alives itself. Every error is JSON with a code.
 */
export class HttpServer {
  private readonly node: NodeView;
  private readonly options: HttpOptions;
  readonly feed: EventFeed;
  private readonly files = new StaticFiles();
  private server: Server | undefined;
  private readonly buckets = new BoundedMap<string, { tokens: number; at: number }>(10_000);
  private readonly streams = new Set<ServerResponse>();
  private readonly streamsByClient = new Map<string, number>();
  private readonly connectionsByClient = new Map<string, number>();
  private keepalive: NodeJS.Timeout | undefined;
  private readonly shared: RestShared = { now: () => performance.now() };
  url = '';

  constructor(node: NodeView, options: HttpOptions = {}) {
    this.node = node;
    this.options = options;
    this.feed = new EventFeed(node, { runId: randomBytes(6).toString('hex'), capacity: options.eventHistory });
  }

  async start(): Promise<string> {
    await this.files.load();
    const requestTimeout = this.options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
    // Node looks for requests past their time at this interval (30 s by default): within a quarter of it.
    const connectionsCheckingInterval = Math.min(30_000, Math.ceil(requestTimeout / 4));
    const server = createServer({ requestTimeout, connectionsCheckingInterval }, (req, res) => void this.handle(req, res));
    server.headersTimeout = Math.min(10_000, requestTimeout);
    server.maxConnections = this.options.maxConnections ?? MAX_CONNECTIONS;
    cutStalledWrites(server, this.options.writeTimeoutMs ?? WRITE_TIMEOUT_MS);
    server.on('connection', (socket: Socket) => this.admit(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port ?? 0, this.options.host ?? '127.0.0.1', () => resolve());
    });
    this.server = server;
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : this.options.port;
    this.url = localUrl(this.options.host ?? '127.0.0.1', port!);
    this.keepalive = setInterval(() => {
      for (const s of this.streams) s.write(': keep-alive\n\n');
    }, KEEPALIVE_MS);
    return this.url;
  }

  async stop(): Promise<void> {
    clearInterval(this.keepalive);
    this.feed.close();
    for (const s of this.streams) s.end();
    if (!this.server) return;
    const server = this.server;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  }

  /** Cuts a connection over its client's share (MAX_CONNECTIONS_PER_CLIENT). */
  private admit(socket: Socket): void {
    const remote = socket.remoteAddress ?? '?';
    if (isLoopback(remote) && !this.options.limitLoopback) return;
    const held = this.connectionsByClient.get(remote) ?? 0;
    if (held >= MAX_CONNECTIONS_PER_CLIENT) return void socket.destroy();
    this.connectionsByClient.set(remote, held + 1);
    socket.once('close', () => {
      const left = (this.connectionsByClient.get(remote) ?? 1) - 1;
      if (left > 0) this.connectionsByClient.set(remote, left);
      else this.connectionsByClient.delete(remote);
    });
  }

  /**
   * The client a request counts against: its remote address; for one from loopback, the address a
   * trusted proxy appended to `X-Forwarded-For` (the last: those before it are the client's own
   * say), else none (loopback is not limited unless `limitLoopback`).
   */
  private clientOf(req: IncomingMessage): string | undefined {
    const remote = req.socket.remoteAddress ?? '?';
    if (!isLoopback(remote)) return remote;
    if (this.options.trustProxy) {
      const forwarded = req.headers['x-forwarded-for'];
      const last = (Array.isArray(forwarded) ? forwarded.join(',') : forwarded)?.split(',').at(-1)?.trim();
      if (last && isIP(last)) return last;
    }
    return this.options.limitLoopback ? remote : undefined;
  }

  /**
   * A token bucket per client address: false when it is empty. Refilled on the monotonic clock:
   * the wall clock set back an hour would put every known client an hour's tokens in debt.
   */
  private allow(req: IncomingMessage): boolean {
    const burst = this.options.rateBurst ?? 200;
    const rate = this.options.ratePerSecond ?? 50;
    const key = this.clientOf(req) ?? req.socket.remoteAddress ?? '?';
    const now = performance.now();
    const b = this.buckets.get(key) ?? { tokens: burst, at: now };
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * rate);
    b.at = now;
    this.buckets.set(key, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  private headers(extra: Record<string, string | number>): Record<string, string | number> {
    // Exposed, so that a page of the allowed origin can read when to retry and what a path answers.
    return this.options.cors ? { 'access-control-allow-origin': this.options.cors, 'access-control-expose-headers': 'retry-after, allow', vary: 'origin', ...extra } : extra;
  }

  private error(res: ServerResponse, status: number, code: string, message: string): void {
    if (res.headersSent) return void res.end();
    res.writeHead(status, this.headers({ 'content-type': 'application/json', 'cache-control': 'no-store' }));
    res.end(JSON.stringify({ error: { code, message } }));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      if (hostRefused(this.options.host ?? '127.0.0.1', req.headers.host, this.options.hostNames)) {
        req.resume();
        return this.error(res, 403, 'HOST_REFUSED', `this port answers only this machine's names (localhost, its IP addresses), not "${req.headers.host}": a page that points its own name here is refused; --http-host-name NAME adds one (a reverse proxy's)`);
      }
      const url = requestTarget(req.url);
      if (!url) {
        req.resume();
        return this.error(res, 400, 'BAD_REQUEST', `not a request target this server answers: ${(req.url ?? '').slice(0, 200)}`);
      }
      const method = req.method ?? 'GET';
      if (method === 'OPTIONS') {
        req.resume();
        if (!this.options.cors) {
          res.setHeader('allow', this.allowed(url.pathname) ?? 'GET, HEAD, POST');
          return this.error(res, 405, 'CORS_OFF', 'cross-origin requests are off (the node runs without --http-cors)');
        }
        res.writeHead(204, this.headers({ 'access-control-allow-methods': 'GET, POST', 'access-control-allow-headers': 'content-type, last-event-id', 'access-control-max-age': 600 }));
        return void res.end();
      }
      if (!this.allow(req)) {
        req.resume();
        res.setHeader('retry-after', '1');
        return this.error(res, 429, 'RATE_LIMITED', 'too many requests from this address; slow down');
      }
      if (method === 'GET' && url.pathname === '/events') return this.stream(req, res, url.searchParams);
      if ((method === 'GET' || method === 'HEAD') && this.files.serve(url.pathname, req, res)) return;
      const body = method === 'POST' ? await readBody(req) : (req.resume(), undefined);
      if (body === null) return this.error(res, 413, 'TOO_LARGE', `a request body is at most ${MAX_BODY} bytes`);
      const answer = await answerRest(this.node, this.feed, method, url.pathname, url.searchParams, body, this.shared);
      if (!answer) {
        const allow = this.allowed(url.pathname);
        if (allow === undefined || allow.split(', ').includes(method)) return this.error(res, 404, 'NOT_FOUND', `no such path: ${method} ${url.pathname} (the API follows Esplora's paths; see docs/REST.md)`);
        res.setHeader('allow', allow);
        return this.error(res, 405, 'METHOD_NOT_ALLOWED', `${url.pathname} answers ${allow}, not ${method}`);
      }
      await this.node.db.flushed();
      const h = { 'cache-control': 'no-store' };
      if ('json' in answer) {
        await endAnswer(req, res, answer.status ?? 200, this.headers({ ...h, 'content-type': 'application/json' }), JSON.stringify(answer.json));
      } else if ('shared' in answer) {
        await endAnswer(req, res, 200, this.headers({ ...h, 'content-type': 'application/json' }), answer.shared);
      } else if ('text' in answer) {
        await endAnswer(req, res, 200, this.headers({ ...h, 'content-type': 'text/plain; charset=utf-8' }), answer.text);
      } else {
        res.writeHead(200, this.headers({ 'cache-control': answer.immutable ? IMMUTABLE : 'no-store', 'content-type': 'application/octet-stream' }));
        res.end(answer.bytes);
      }
    } catch (err) {
      if (err instanceof RestError) {
        if (err.retryAfterSeconds !== undefined && !res.headersSent) res.setHeader('retry-after', String(err.retryAfterSeconds));
        return this.error(res, err.status, err.code, err.message);
      }
      this.error(res, 500, 'INTERNAL', (err as Error).message);
    }
  }

  /** The methods `path` is answered to (an `Allow` header), undefined for a path none of this server's. */
  private allowed(path: string): string | undefined {
    return path === '/events' ? 'GET' : this.files.has(path) ? 'GET, HEAD' : allowedMethods(path);
  }

  /**
   * `/events`: Server-Sent Events. `types=block,reorg,tx,address` picks kinds (default all but
   * address, which `address=` parameters turn on); `Last-Event-ID` (or `since=`) resumes.
   */
  private stream(req: IncomingMessage, res: ServerResponse, query: URLSearchParams): void {
    const given = new Set(query.getAll('address'));
    if (given.size > MAX_TRACKED) return this.error(res, 400, 'BAD_REQUEST', `follow at most ${MAX_TRACKED} addresses a stream`);
    // Each followed address by its hex, as events list them, with its text for the client.
    const tracked = new Map<string, string>();
    for (const text of given) {
      try {
        tracked.set(toHex(decodeAddress(text)), text);
      } catch (err) {
        return this.error(res, 400, 'BAD_REQUEST', `not an address: ${text} (${(err as Error).message})`);
      }
    }
    const typeList = query.get('types')?.split(',') ?? ['block', 'reorg', 'tx', ...(tracked.size > 0 ? ['address'] : [])];
    const unknown = typeList.filter((t) => !['block', 'reorg', 'tx', 'address'].includes(t));
    if (unknown.length > 0) return this.error(res, 400, 'BAD_REQUEST', `unknown event types: ${unknown.join(', ')} (block, reorg, tx, address)`);
    if (this.streams.size >= MAX_STREAMS) return this.error(res, 503, 'BUSY', 'too many event streams open');
    const client = this.clientOf(req);
    const held = client === undefined ? 0 : (this.streamsByClient.get(client) ?? 0);
    if (held >= MAX_STREAMS_PER_CLIENT) return this.error(res, 429, 'RATE_LIMITED', `at most ${MAX_STREAMS_PER_CLIENT} event streams a client`);
    if (client !== undefined) this.streamsByClient.set(client, held + 1);
    const types = new Set(typeList);
    res.writeHead(200, this.headers({ 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' }));
    const send = (event: FeedEvent) => {
      const id = this.feed.idOf(event.seq);
      let out = '';
      if (types.has(event.type)) out += `id: ${id}\nevent: ${event.type}\ndata: ${JSON.stringify({ seq: event.seq, ...event.data() })}\n\n`;
      if (types.has('address')) {
        for (const [hex, address] of tracked) {
          if (event.addresses.has(hex)) out += `id: ${id}\nevent: address\ndata: ${JSON.stringify({ seq: event.seq, address, cause: event.type, ...event.data() })}\n\n`;
        }
      }
      if (out === '') return;
      // A client that does not read is cut rather than buffered without end; its id resumes it.
      // Judged on what it has not read before this event, so that one large event (a deep
      // reorganisation's) still reaches a client that keeps up.
      if (res.writableLength > MAX_STREAM_BACKLOG) {
        res.destroy();
        return;
      }
      res.write(out);
    };
    const lastId = (req.headers['last-event-id'] as string | undefined) ?? query.get('since') ?? undefined;
    res.write(`retry: 2000\n: cairn events, run ${this.feed.runId}, latest ${this.feed.latest}\n\n`);
    if (lastId !== undefined) {
      const resumed = this.feed.resume(lastId);
      if ('resync' in resumed) {
        const hint = resumed.resync === 'too-old' ? `events before ${resumed.oldest} are no longer kept` : resumed.resync === 'restarted' ? 'the node restarted since that id' : 'no such event id';
        res.write(`id: ${this.feed.idOf(this.feed.latest)}\nevent: resync\ndata: ${JSON.stringify({ reason: resumed.resync, message: `${hint}: fetch the state afresh`, ...resumed })}\n\n`);
      } else {
        for (const e of resumed.events) send(e);
      }
    }
    const unsubscribe = this.feed.subscribe(send);
    this.streams.add(res);
    let ended = false;
    const done = () => {
      if (ended) return;
      ended = true;
      unsubscribe();
      this.streams.delete(res);
      if (client === undefined) return;
      const left = (this.streamsByClient.get(client) ?? 1) - 1;
      if (left > 0) this.streamsByClient.set(client, left);
      else this.streamsByClient.delete(client);
    };
    res.on('close', done);
    req.on('error', done);
  }
}

/** The body as text; null when it is over MAX_BODY. */
function readBody(req: IncomingMessage): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY) chunks.push(chunk);
    });
    req.on('end', () => resolve(size > MAX_BODY ? null : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export type { FeedEventType };

/** Whether a socket's remote address (127.0.0.1, ::1, ::ffff:127.0.0.1) is this machine's. */
function isLoopback(address: string): boolean {
  return addressGroup(`/${address.includes(':') ? 'ip6' : 'ip4'}/${address}`)?.loopback ?? false;
}
