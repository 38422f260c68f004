import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { request as httpRequest, type ClientRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join, resolve } from 'node:path';
import { CairnError } from '../ledger/errors.ts';
import { jsonParseReason } from '../ledger/json-text.ts';
import { DEFAULT_DATADIR, UsageError } from './args.ts';
import { fileReason, isSystemError } from '../node/file-errors.ts';
import { datadirHolder, holderText } from './lock-holder.ts';
import { folderEntries } from './datadir.ts';
import { endpointPid, isLightDatadir, runningPid } from './start-errors.ts';
import { RPC_ENDPOINT_FILE, RPC_ERRORS, type RpcEndpointFile, type RpcMethods, type StatusResult } from '../node/rpc-types.ts';
import type { LightStatusResult } from '../node/light/rpc.ts';

/** A failure talking to a node: not running, refused our token, or answered with a JSON-RPC error. */
export class RpcClientError extends CairnError {
  readonly rpcCode: number | undefined;
  readonly data: unknown;
  constructor(code: string, message: string, rpcCode?: number, data?: unknown) {
    super(code, message);
    this.rpcCode = rpcCode;
    this.data = data;
  }
}

/** How long a call waits for its answer, asking again while the node reorganises included. */
export const RPC_TIMEOUT_MS = 60_000;
/** A token an Authorization header can carry, as the node makes them (hex). */
const RPC_TOKEN = /^[\x21-\x7e]+$/;

/** The longest a node's "ask again in" is taken at its word (a wrong one must not stall a call). */
const MAX_RETRY_AFTER_MS = 5_000;

export interface RpcClientOptions {
  /**
   * Told, once a call, that the node is reorganising its chain and the call waits to ask again
   * (cairn's commands print it on stderr); unset, the call waits silently.
   */
  readonly notice?: (text: string) => void;
  /** The datadir whose rpc.json named the endpoint (RpcClient.fromDatadir sets it). */
  readonly datadir?: EndpointSource;
}

/**
 * The typed JSON-RPC client the CLI uses (and any script may): `await client.call('getAccount',
 * { address })` is checked against the server's own method table (node/rpc-types.ts).
 */
export class RpcClient<M extends { [K in keyof M]: { params: unknown; result: unknown } } = RpcMethods> {
  readonly url: string;
  private readonly token: string;
  private readonly notice: ((text: string) => void) | undefined;
  /** The datadir whose rpc.json named the endpoint, if one did: a failure is told in its terms. */
  private readonly datadir: EndpointSource | undefined;
  private nextId = 1;

  constructor(url: string, token: string, options: RpcClientOptions = {}) {
    this.url = url;
    this.token = token;
    this.notice = options.notice;
    this.datadir = options.datadir;
  }

  /** Finds a running node's endpoint and token in its datadir. */
  static async fromDatadir<T extends { [K in keyof T]: { params: unknown; result: unknown } } = RpcMethods>(datadir: string, options: RpcClientOptions = {}): Promise<RpcClient<T>> {
    // cairn status and cairn stop take a light client's datadir too: what to start is a light client then.
    const light = isLightDatadir(datadir);
    const [what, start] = light ? ['light client', `cairn light --datadir ${datadir} --bootstrap MULTIADDR`] : ['node', `cairn node --datadir ${datadir}`];
    // Read again once when a process holds the datadir's store: a running node holds it too, and
    // may have written its rpc.json since the first read.
    for (let read = 1; ; read++) {
      let endpoint: RpcEndpointFile | undefined;
      let damage: string | undefined;
      let text = '';
      try {
        text = await readFile(join(datadir, RPC_ENDPOINT_FILE), 'utf8');
        endpoint = endpointIn(text);
        if (!endpoint) damage = 'not the url, token and pid a node writes';
      } catch (err) {
        // A node run by another user (a service's) keeps rpc.json to itself: that is no "not running".
        if (isSystemError(err) && err.code !== 'ENOENT') {
          throw new RpcClientError('RPC_ENDPOINT_UNREADABLE', `cannot read ${join(datadir, RPC_ENDPOINT_FILE)}: ${fileReason(err)}; the ${what} writes it for the user it runs as: run this as that user, or give --rpc URL with its token in CAIRN_RPC_TOKEN`);
        }
        if (!isSystemError(err)) damage = `not JSON: ${jsonParseReason(err, text)}`;
      }
      // A node killed (kill -9, a crash, a power cut) leaves its rpc.json behind: say so rather than
      // "not answering" at an address nobody listens on.
      const pid = endpoint && endpointPid(datadir);
      if (endpoint && (pid === undefined || runningPid(datadir) !== undefined)) {
        return new RpcClient<T>(endpoint.url, endpoint.token, { ...options, datadir: { path: datadir, light, what, start, pid } });
      }
      // A node still starting (a long store open) holds its store and has written no rpc.json yet.
      const holder = datadirHolder(datadir, light);
      if (holder && read === 1) continue;
      if (holder) throw new RpcClientError('NODE_STARTING', holderText(datadir, holder, what));
      // Written whole by the node (a kill leaves the old file or the new one): a user's edit, or a bad disk.
      if (damage !== undefined) {
        throw new RpcClientError('RPC_ENDPOINT_DAMAGED', `${join(datadir, RPC_ENDPOINT_FILE)} is damaged (${damage}): the ${what} writes it anew when it starts; if one runs there, restart it, or give --rpc URL with its token in CAIRN_RPC_TOKEN`);
      }
      if (endpoint) {
        throw new RpcClientError('NODE_NOT_RUNNING', `no ${what} is running on ${datadir}: its ${RPC_ENDPOINT_FILE} names pid ${pid}, which has ended without removing it (killed, or crashed: see its log); start it again with: ${start}`);
      }
      // cairn devnet's folder (its nodes in DIR/node-N): "start one with cairn node --datadir ./devnet"
      // sent the user to a start that refuses that folder.
      const first = join(datadir, 'node-0');
      if (existsSync(join(first, 'genesis.json'))) throw new RpcClientError('NODE_NOT_RUNNING', `${datadirPath(datadir)} is a devnet's folder (cairn devnet): each of its nodes has a datadir of its own in it, such as --datadir ${first}`);
      // A folder of other things (a keystore's, --datadir ~): "start one with cairn node" there
      // sent the user to a start that refuses it.
      const { entries, cairn } = await folderEntries(datadir);
      if (entries.length > 0 && !cairn) {
        throw new RpcClientError('NOT_A_DATADIR', `${datadirPath(datadir)} holds no node's data (no genesis.json, no chain store, among its ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}): give --datadir the folder a node runs on (default ./data)`);
      }
      throw new RpcClientError('NODE_NOT_RUNNING', `no ${what} is running on ${datadirPath(datadir)}: it has no ${RPC_ENDPOINT_FILE}; if one runs on another datadir, give that --datadir, else start one with: ${start}`);
    }
  }

  /**
   * Calls `method`. A node part-way through a reorganisation answers a read or a submission "ask
   * again" (RPC_ERRORS.REORGANISING, having done nothing) rather than hold it for minutes: asked
   * again, after the wait it names, until RPC_TIMEOUT_MS have passed since the call began.
   */
  async call<K extends keyof M & string>(method: K, params: M[K]['params']): Promise<M[K]['result']> {
    const deadline = performance.now() + RPC_TIMEOUT_MS;
    let told = false;
    for (;;) {
      try {
        return await this.callOnce(method, params, Math.max(1, deadline - performance.now()));
      } catch (err) {
        if (!(err instanceof RpcClientError) || err.rpcCode !== RPC_ERRORS.REORGANISING) throw err;
        const data = (typeof err.data === 'object' && err.data !== null ? err.data : {}) as { retryAfterSeconds?: unknown; height?: unknown };
        const wait = typeof data.retryAfterSeconds === 'number' && data.retryAfterSeconds >= 0 ? Math.min(data.retryAfterSeconds * 1000, MAX_RETRY_AFTER_MS) : 1000;
        if (performance.now() + wait >= deadline) {
          throw new RpcClientError(err.code, `the node was still reorganising its chain after ${RPC_TIMEOUT_MS / 1000} s: ${err.message}`, err.rpcCode, err.data);
        }
        if (!told) this.notice?.(`waiting for the node to finish reorganising its chain${typeof data.height === 'number' ? ` (part-way, at height ${data.height})` : ''}: ${method} asks again until it has`);
        told = true;
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  }

  /** The refusal of a command only a full node answers, where a light client answered instead. */
  lightClientError(rpcCode?: number): RpcClientError {
    const where = this.datadir ? `${this.datadir.path} is a light client's datadir, and a light client` : `the node at ${this.url} is a light client, which`;
    return new RpcClientError('RPC_LIGHT_CLIENT', `${where} answers only cairn status, cairn account ADDRESS --light and cairn stop: this command needs a full node's --datadir (default ./data)`, rpcCode);
  }

  private async callOnce<K extends keyof M & string>(method: K, params: M[K]['params'], timeoutMs: number): Promise<M[K]['result']> {
    const body = JSON.stringify({ jsonrpc: '2.0', id: this.nextId++, method, params });
    let response: { status: number; text: string };
    try {
      response = await post(this.url, this.token, body, timeoutMs);
    } catch (err) {
      if (err instanceof RpcClientError) throw err;
      // Its pid alive is no proof: after a crash and a restart of the machine, another process may have it.
      const d = this.datadir;
      if (d) throw new RpcClientError('NODE_NOT_RUNNING', `the ${d.what} on ${d.path} does not answer at ${this.url} (its ${RPC_ENDPOINT_FILE} names pid ${d.pid ?? '?'}): if it has ended (a crash leaves ${RPC_ENDPOINT_FILE} behind, and its pid may since be another process's), start it again with: ${d.start}`);
      throw new RpcClientError('NODE_NOT_RUNNING', `the node at ${this.url} is not answering; is it running?`);
    }
    // The token is new at every start of the node: one copied before a restart is the usual cause.
    if (response.status === 401) throw new RpcClientError('RPC_UNAUTHORIZED', `the node at ${this.url} refused the RPC token: give the one in its datadir's ${RPC_ENDPOINT_FILE}, which is new at each start of the node (--rpc-token or CAIRN_RPC_TOKEN), or, on the node's machine, --datadir DIR instead of --rpc`);
    let answer: unknown;
    try {
      answer = JSON.parse(response.text);
    } catch {
      answer = undefined;
    }
    // Anything else that answers HTTP (the explorer's port, most often) is told apart here, not
    // printed as if a node had said it ("no such path: POST /").
    if (!isJsonRpcAnswer(answer)) throw new RpcClientError('RPC_BAD_RESPONSE', `${this.url} answers, but not JSON-RPC (is it the explorer's --http-port?)`);
    if (answer.error) {
      // `cairn tx --datadir ./light` read only `unknown method "getTransaction"`.
      if (answer.error.code === RPC_ERRORS.METHOD_NOT_FOUND && this.datadir?.light) throw this.lightClientError(answer.error.code);
      throw new RpcClientError('RPC_ERROR', answer.error.message, answer.error.code, answer.error.data);
    }
    return answer.result as M[K]['result'];
  }
}

/** Whether a status answer is a light client's (cairn status --datadir ./light), which has fields of its own. */
export function isLightStatus(s: StatusResult | LightStatusResult): s is LightStatusResult {
  return 'headerMemoryBytes' in s;
}

/** A datadir as the client found it: what runs there, the command that starts it, the pid its rpc.json names. */
export interface EndpointSource {
  readonly path: string;
  readonly light: boolean;
  readonly what: string;
  readonly start: string;
  readonly pid: number | undefined;
}

interface JsonRpcAnswer {
  readonly result?: unknown;
  readonly error?: { readonly code: number; readonly message: string; readonly data?: unknown };
}

/** A JSON-RPC 2.0 response: the version, and a result or an error with its code and message. */
function isJsonRpcAnswer(a: unknown): a is JsonRpcAnswer {
  if (typeof a !== 'object' || a === null || (a as { jsonrpc?: unknown }).jsonrpc !== '2.0') return false;
  const { error } = a as { error?: unknown };
  if (error === undefined) return 'result' in a;
  return typeof error === 'object' && error !== null && typeof (error as { code?: unknown }).code === 'number' && typeof (error as { message?: unknown }).message === 'string';
}

/** The largest answer taken from a node (a full mempool's listing is tens of MB). */
const MAX_RESPONSE_BYTES = 256 * 1024 * 1024;

/**
 * One POST with node:http rather than fetch: a command that asks once ran ~20 ms (about a tenth)
 * faster this way, measured. No keep-alive: a command makes a few calls, and an idle socket must
 * not hold a script's process open. The answer must come whole within `timeoutMs` and
 * MAX_RESPONSE_BYTES: a node that trickles without end is not waited on for ever.
 */
function post(url: string, token: string, body: string, timeoutMs: number): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    // A request node:http refuses to make (a URL or a token it cannot send) throws before `req` is
    // set: the deadline must not then fire on it, a ReferenceError that ended a script's process.
    let req: ClientRequest | undefined;
    const deadline = setTimeout(() => req?.destroy(new Error('timed out')), timeoutMs);
    const done = <T>(settle: (value: T) => void) => (value: T) => {
      clearTimeout(deadline);
      settle(value);
    };
    resolve = done(resolve);
    reject = done(reject);
    try {
      req = (url.startsWith('https:') ? httpsRequest : httpRequest)(url, {
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${token}` },
        timeout: timeoutMs,
      }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size <= MAX_RESPONSE_BYTES) chunks.push(c);
          else res.destroy(new RpcClientError('RPC_BAD_RESPONSE', `the node at ${url} sent an answer over ${MAX_RESPONSE_BYTES / 1024 / 1024} MiB`));
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
    } catch (err) {
      reject(err);
      return;
    }
    const sent = req;
    sent.on('timeout', () => sent.destroy(new Error('timed out')));
    sent.on('error', reject);
    sent.end(body);
  });
}

/**
 * `datadir` as a message names it: with the folder it stands for when relative, since a command
 * run from another folder than the node's reads another ./data (the default), and said only
 * "no node is running on data" about a node that was running.
 */
export function datadirPath(datadir: string): string {
  const full = resolve(datadir);
  return full === datadir ? datadir : `${datadir} (${full})`;
}

const stderrNotice = (text: string) => void process.stderr.write(`cairn: ${text}\n`);

/**
 * The node a command talks to: --rpc URL with --rpc-token (or CAIRN_RPC_TOKEN), else the one
 * running on --datadir (default ./data), found through its rpc.json.
 */
export async function connect(values: Record<string, unknown>): Promise<RpcClient> {
  const url = typeof values['rpc'] === 'string' ? values['rpc'] : undefined;
  if (url) {
    checkRpcUrl(url);
    const token = (typeof values['rpc-token'] === 'string' ? values['rpc-token'] : undefined) ?? process.env['CAIRN_RPC_TOKEN'];
    if (!token) throw new UsageError(`--rpc needs --rpc-token (or CAIRN_RPC_TOKEN): the token in the node's ${RPC_ENDPOINT_FILE}, in its datadir`);
    if (!RPC_TOKEN.test(token)) throw new UsageError("--rpc-token (or CAIRN_RPC_TOKEN) must be the token in the node's rpc.json: printable characters without spaces");
    return new RpcClient(url, token, { notice: stderrNotice });
  }
  return RpcClient.fromDatadir(typeof values['datadir'] === 'string' ? values['datadir'] : DEFAULT_DATADIR, { notice: stderrNotice });
}

/** The endpoint in an rpc.json's text, if it is one a node could have written: anything else would fail a call with a misleading reason, or none. */
function endpointIn(text: string): RpcEndpointFile | undefined {
  const e = JSON.parse(text) as Partial<Record<keyof RpcEndpointFile, unknown>> | null;
  if (typeof e !== 'object' || e === null) return undefined;
  const { url, token, pid } = e;
  if (typeof url !== 'string' || !isRpcUrl(url) || typeof token !== 'string' || !RPC_TOKEN.test(token)) return undefined;
  return typeof pid === 'number' && Number.isSafeInteger(pid) && pid > 0 ? { url, token, pid } : undefined;
}

function isRpcUrl(url: string): boolean {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  return (parsed.protocol === 'http:' || parsed.protocol === 'https:') && parsed.hostname !== '';
}

/**
 * Refuses an --rpc that is no http(s) URL. Without a scheme (`127.0.0.1:7371`, `localhost:7371`)
 * the request failed before it left, and the user read "not answering; is it running?" about a
 * node that was running.
 */
function checkRpcUrl(url: string): void {
  if (isRpcUrl(url)) return;
  const hint = /^[^/:]+:\d+\/?$/.test(url) ? `: did you mean http://${url}?` : '';
  throw new UsageError(`--rpc must be the node's URL, http://HOST:PORT (its rpc.json says it), got "${url}"${hint}`);
}
