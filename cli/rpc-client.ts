import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CairnError } from '../ledger/errors.ts';
import { DEFAULT_DATADIR, UsageError } from './args.ts';
import { RPC_ENDPOINT_FILE, type RpcEndpointFile, type RpcMethod, type RpcMethods } from '../node/rpc-types.ts';

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

/**
 * The typed JSON-RPC client the CLI uses (and any script may): `await client.call('getAccount',
 * { address })` is checked against the server's own method table (node/rpc-types.ts).
 */
export class RpcClient {
  readonly url: string;
  private readonly token: string;
  private nextId = 1;

  constructor(url: string, token: string) {
    this.url = url;
    this.token = token;
  }

  /** Finds a running node's endpoint and token in its datadir. */
  static async fromDatadir(datadir: string): Promise<RpcClient> {
    let endpoint: RpcEndpointFile;
    try {
      endpoint = JSON.parse(await readFile(join(datadir, RPC_ENDPOINT_FILE), 'utf8')) as RpcEndpointFile;
    } catch {
      throw new RpcClientError('NODE_NOT_RUNNING', `no node is running on ${datadir} (no ${RPC_ENDPOINT_FILE} there); start one with: cairn node --datadir ${datadir}`);
    }
    return new RpcClient(endpoint.url, endpoint.token);
  }

  async call<M extends RpcMethod>(method: M, params: RpcMethods[M]['params']): Promise<RpcMethods[M]['result']> {
    let response: Response;
    try {
      response = await fetch(this.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${this.token}` },
        body: JSON.stringify({ jsonrpc: '2.0', id: this.nextId++, method, params }),
        signal: AbortSignal.timeout(60_000),
      });
    } catch {
      throw new RpcClientError('NODE_NOT_RUNNING', `the node at ${this.url} is not answering; is it running?`);
    }
    if (response.status === 401) throw new RpcClientError('RPC_UNAUTHORIZED', `the node at ${this.url} refused the RPC token`);
    let body: { result?: unknown; error?: { code: number; message: string; data?: unknown } };
    try {
      body = (await response.json()) as typeof body;
    } catch {
      throw new RpcClientError('RPC_BAD_RESPONSE', `the node at ${this.url} answered HTTP ${response.status} without JSON`);
    }
    if (body.error) throw new RpcClientError('RPC_ERROR', body.error.message, body.error.code, body.error.data);
    return body.result as RpcMethods[M]['result'];
  }
}

/**
 * The node a command talks to: --rpc URL with --rpc-token (or CAIRN_RPC_TOKEN), else the one
 * running on --datadir (default ./data), found through its rpc.json.
 */
export async function connect(values: Record<string, unknown>): Promise<RpcClient> {
  const url = typeof values['rpc'] === 'string' ? values['rpc'] : undefined;
  if (url) {
    const token = (typeof values['rpc-token'] === 'string' ? values['rpc-token'] : undefined) ?? process.env['CAIRN_RPC_TOKEN'];
    if (!token) throw new UsageError('--rpc needs --rpc-token (or CAIRN_RPC_TOKEN)');
    return new RpcClient(url, token);
  }
  return RpcClient.fromDatadir(typeof values['datadir'] === 'string' ? values['datadir'] : DEFAULT_DATADIR);
}
