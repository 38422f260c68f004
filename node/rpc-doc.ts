/**
 * The node's JSON-RPC API as an OpenRPC 1.3 document: the one source for `rpc.discover`, `help`,
 * docs/RPC.md (scripts/rpc-docs.ts) and the server's parameter checks (node/rpc.ts), so what a
 * user reads is what the node enforces. The type of `methods` makes a method of RpcMethods without
 * a description a compile error. Examples use the devnet's public key (README) and run as written
 * against a node of that network whose block 1 holds the first example transaction (test/openrpc.test.ts).
 */
import type { Schema } from './json-schema.ts';
import type { RpcMethod } from './rpc-types.ts';
import { RPC_ERRORS } from './rpc-types.ts';
import { REORG_WAIT_MS } from './reorg-wait.ts';

export interface RpcParamDoc {
  readonly name: string;
  readonly description: string;
  readonly required?: boolean;
  readonly schema: Schema;
}

export interface RpcExample {
  readonly name: string;
  readonly params: readonly { readonly name: string; readonly value: unknown }[];
}

export interface RpcMethodDoc {
  readonly name: RpcMethod;
  readonly summary: string;
  readonly description?: string;
  readonly params: readonly RpcParamDoc[];
  readonly result: { readonly name: string; readonly schema: Schema };
  readonly errors: readonly { readonly code: number; readonly message: string }[];
  readonly examples: readonly RpcExample[];
}

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const int: Schema = { type: 'integer', minimum: 0 };
const obj = (properties: Record<string, Schema>, required = Object.keys(properties)): Schema => ({ type: 'object', properties, required, additionalProperties: false });

const SCHEMAS: Record<string, Schema> = {
  Hash: { type: 'string', pattern: '^[0-9a-f]{64}$', description: '32 bytes, lower-case hex' },
  Address: { type: 'string', pattern: '^cairn1[02-9ac-hj-np-z]{38}$', description: 'a bech32m address' },
  Amount: { type: 'string', pattern: '^(0|[1-9][0-9]*)$', description: 'base units (10^-decimals of a coin), decimal' },
  Decimal: { type: 'string', pattern: '^(0|[1-9][0-9]*)$', description: 'an unsigned integer too large for JSON numbers, decimal' },
  Height: { type: 'integer', minimum: 0, maximum: 4294967295 },
  Hex: { type: 'string', pattern: '^([0-9a-f]{2})*$', description: 'bytes, lower-case hex' },
  Empty: { type: 'object', properties: {}, additionalProperties: false },
};

const ERR = {
  params: { code: RPC_ERRORS.INVALID_PARAMS, message: 'invalid params: unknown, missing or ill-typed' },
  notFound: { code: RPC_ERRORS.NOT_FOUND, message: 'not found' },
  rejected: { code: RPC_ERRORS.REJECTED, message: 'rejected by a rule (error.data.code names it)' },
  pruned: { code: RPC_ERRORS.PRUNED, message: 'pruned: this node no longer keeps that block\'s body or undo data (status: prunedHeight)' },
  reorganising: { code: RPC_ERRORS.REORGANISING, message: `reorganising: still ${REORG_WAIT_MS / 1000} s after the call came; nothing done, ask again (error.data: retryAfterSeconds, height)` },
};

/** The devnet's public development key (README) and what its first example transfers look like. */
export const EXAMPLE = {
  address: 'cairn12rqpp3a5l5vef8weqsvd42g9rzmqx4la30zrhz',
  /** 1 CRN to cairn1qurswpc8…, fee 1000, nonce 0 (in block 1 of the examples' chain). */
  txid: '2d5bb48344902b8ab9004877770e336a2d899a1110560c7028209839e427a40e',
  tx0: '010000053950c010c7b4fd19949dd90418daa90518b60357fd07070707070707070707070707070707070707070000000005f5e10000000000000003e800000000000000000268aabcba6a4effe92121c7b32b4f70358533d792ba4dda700d8eb8a9f37edae1e4d1673e2f177e68f160f0acd2e4bd516b320e2a3893a350a2c247d64e638d8943763234e370bddbc9bfaf4dea21c024beab05aeda1ef6ffcb257f19815f6aed',
  tx1: '010000053950c010c7b4fd19949dd90418daa90518b60357fd07070707070707070707070707070707070707070000000005f5e10000000000000003e800000000000000010268aabcba6a4effe92121c7b32b4f70358533d792ba4dda700d8eb8a9f37edae19fcb05fb05504a39a80a8b61babec20334e661b99c23b0bb31bd95e14ef21e292486eae750e4c7552053cc4d0d1b0ac5b256c75db4fbe87b4a3c3c16683a4567',
  tx2: '010000053950c010c7b4fd19949dd90418daa90518b60357fd07070707070707070707070707070707070707070000000005f5e10000000000000003e800000000000000020268aabcba6a4effe92121c7b32b4f70358533d792ba4dda700d8eb8a9f37edae1a65c087c2fff510b1c741b483adb8cead7ed627174dbe37b1d10d3834734b39750a702d03fdb1b36085e8f6c659b39b7f68108b263091418a2a53bbbcea086c1',
};

const none = (name: string): RpcExample => ({ name, params: [] });
const blockParams: RpcParamDoc[] = [
  { name: 'height', description: 'a main-chain height', schema: ref('Height') },
  { name: 'hash', description: 'a block hash (any stored block, main chain or not)', schema: ref('Hash') },
];

const proofBlock = obj({ height: ref('Height'), hash: ref('Hash'), header: ref('Hex') });

const txJson = obj({
  id: ref('Hash'),
  status: { type: 'string', enum: ['pending', 'confirmed'] },
  blockHeight: { type: ['integer', 'null'], minimum: 0 },
  blockHash: { oneOf: [ref('Hash'), { type: 'null' }] },
  from: ref('Address'),
  to: ref('Address'),
  amount: ref('Amount'),
  fee: ref('Amount'),
  nonce: ref('Decimal'),
});

const METHODS: { readonly [M in RpcMethod]: Omit<RpcMethodDoc, 'name'> } = {
  status: {
    summary: 'network, height, head, difficulty, hash rate, peers in/out, sync (a snapshot sync\'s phase and progress too), mining, mempool, fee estimate, memory; a reorganisation under way is waited out for 2 s, then answered part-way with reorganising: true',
    params: [],
    result: {
      name: 'status',
      schema: obj({
        network: { type: 'string' }, chainId: int, genesis: ref('Hash'), height: ref('Height'), head: ref('Hash'), totalWork: ref('Decimal'),
        peers: int, mempool: int, mempoolBytes: int, listen: { type: 'array', items: { type: 'string' } }, peerId: { type: 'string' },
        syncing: { type: 'boolean' }, syncTarget: int, reorganising: { type: 'boolean' },
        snapshotSync: { oneOf: [{ type: 'null' }, obj({ phase: { type: 'string', enum: ['headers', 'chunks', 'installing'] }, pivot: ref('Height'), done: int, total: int })] },
        checkpoint: { oneOf: [{ type: 'null' }, obj({ height: ref('Height'), hash: ref('Hash'), passed: { type: 'boolean' } })] }, prunedHeight: ref('Height'), stateBase: ref('Height'),
        historyCheck: { oneOf: [{ type: 'null' }, obj({ state: { type: 'string', enum: ['checking', 'valid', 'invalid', 'off'] }, height: ref('Height'), target: ref('Height'), reason: { type: 'string' } })] },
        mining: { type: 'boolean' }, miningWaits: { type: ['string', 'null'] }, miningHashRate: { type: ['integer', 'null'], minimum: 0 }, unit: { type: 'string' }, decimals: int,
        difficulty: ref('Decimal'), networkHashRate: { type: ['number', 'null'], minimum: 0 }, tipTimestamp: int, tipAge: int,
        peersIn: int, peersOut: int, bestPeerHeight: { type: ['integer', 'null'], minimum: 0 }, peersAhead: int, peersApart: int,
        banned: int, lastBan: { oneOf: [{ type: 'null' }, obj({ peer: { type: 'string' }, reason: { type: 'string' }, secondsAgo: int })] }, feeEstimate: ref('Amount'), minFee: ref('Amount'),
        memory: obj({ rss: int, heapUsed: int, heapTotal: int, external: int, arrayBuffers: int, heapLimit: int }),
      }),
    },
    errors: [],
    examples: [none('the node now')],
  },
  getAccount: {
    summary: 'balance, nonce and the next nonce to use (counting pending transactions)',
    params: [{ name: 'address', description: 'the account', required: true, schema: ref('Address') }],
    result: { name: 'account', schema: obj({ address: ref('Address'), balance: ref('Amount'), nonce: ref('Decimal'), nextNonce: ref('Decimal') }) },
    errors: [ERR.params, ERR.reorganising],
    examples: [{ name: 'the devnet key', params: [{ name: 'address', value: EXAMPLE.address }] }],
  },
  getTransaction: {
    summary: 'a transaction, pending or confirmed with its block',
    params: [{ name: 'id', description: 'the transaction id', required: true, schema: ref('Hash') }],
    result: { name: 'transaction', schema: txJson },
    errors: [ERR.params, ERR.notFound, ERR.reorganising],
    examples: [{ name: 'a confirmed transfer', params: [{ name: 'id', value: EXAMPLE.txid }] }],
  },
  getRawTransaction: {
    summary: 'a transaction\'s canonical encoding (hex), pending or on the main chain',
    params: [{ name: 'id', description: 'the transaction id', required: true, schema: ref('Hash') }],
    result: { name: 'hex', schema: ref('Hex') },
    errors: [ERR.params, ERR.notFound, ERR.reorganising],
    examples: [{ name: 'a confirmed transfer', params: [{ name: 'id', value: EXAMPLE.txid }] }],
  },
  getBlock: {
    summary: '{height} or {hash}: a block with its transaction ids',
    params: blockParams,
    result: {
      name: 'block',
      schema: obj({
        hash: ref('Hash'), height: ref('Height'), prevHash: ref('Hash'), merkleRoot: ref('Hash'), stateRoot: ref('Hash'), timestamp: int, target: ref('Hash'), nonce: ref('Decimal'),
        size: int, coinbase: obj({ to: ref('Address'), amount: ref('Amount') }), txs: { type: 'array', items: ref('Hash') }, mainChain: { type: 'boolean' },
      }),
    },
    errors: [ERR.params, ERR.notFound, ERR.pruned, ERR.reorganising],
    examples: [{ name: 'block 1', params: [{ name: 'height', value: 1 }] }],
  },
  getRawBlock: {
    summary: '{height} or {hash}: a block\'s canonical encoding (hex), as peers are sent it',
    params: blockParams,
    result: { name: 'hex', schema: ref('Hex') },
    errors: [ERR.params, ERR.notFound, ERR.pruned, ERR.reorganising],
    examples: [{ name: 'block 1', params: [{ name: 'height', value: 1 }] }],
  },
  getBlocks: {
    summary: '{count?, to?}: summaries of the last main-chain blocks, newest first',
    params: [
      { name: 'count', description: 'how many (default 10)', schema: { type: 'integer', minimum: 1, maximum: 1000 } },
      { name: 'to', description: 'the newest height (default the tip)', schema: ref('Height') },
    ],
    result: {
      name: 'blocks',
      schema: { type: 'array', items: obj({ height: ref('Height'), hash: ref('Hash'), timestamp: int, txs: int, size: int, fees: ref('Amount'), miner: { oneOf: [ref('Address'), { type: 'null' }] } }) },
    },
    errors: [ERR.params, ERR.reorganising],
    examples: [{ name: 'the last two', params: [{ name: 'count', value: 2 }] }],
  },
  getTips: {
    summary: 'the main chain tip and the tips of forks this node has seen',
    params: [],
    result: {
      name: 'tips',
      schema: { type: 'array', items: obj({ height: ref('Height'), hash: ref('Hash'), branchLength: int, forkHeight: ref('Height'), status: { type: 'string', enum: ['active', 'valid-fork', 'invalid'] }, totalWork: ref('Decimal') }) },
    },
    errors: [ERR.reorganising],
    examples: [none('every tip')],
  },
  getPeers: {
    summary: 'connected peers: direction, address, announced height, ban score, bytes in and out, throttled',
    description: 'bytesIn and bytesOut count this connection: what the peer sent us and what we served it. throttled: we answered it "busy, retry later" in the last 10 s (it asked for more than its budget; docs/PROTOCOL.md, request limits). rttMs: its last status round trip.',
    params: [],
    result: {
      name: 'peers',
      schema: {
        type: 'array',
        items: obj({
          id: { type: 'string' },
          addrs: { type: 'array', items: { type: 'string' } },
          direction: { oneOf: [{ type: 'string', enum: ['inbound', 'outbound'] }, { type: 'null' }] },
          height: { type: ['integer', 'null'] },
          totalWork: { oneOf: [ref('Decimal'), { type: 'null' }] },
          banScore: { type: 'number' },
          bytesIn: int,
          bytesOut: int,
          throttled: { type: 'boolean' },
          rttMs: { type: ['number', 'null'], minimum: 0 },
        }),
      },
    },
    errors: [],
    examples: [none('the peers')],
  },
  getMempool: {
    summary: 'pending transactions',
    params: [],
    result: {
      name: 'mempool',
      schema: obj({ size: int, bytes: int, txs: { type: 'array', items: obj({ id: ref('Hash'), from: ref('Address'), to: ref('Address'), amount: ref('Amount'), fee: ref('Amount'), nonce: ref('Decimal') }) } }),
    },
    errors: [],
    examples: [none('what is pending')],
  },
  estimateFee: {
    summary: 'a fee that gets a transaction into the next block (never below the relay minimum)',
    params: [],
    result: {
      name: 'estimate',
      schema: obj({ fee: ref('Amount'), minFee: ref('Amount'), basis: { type: 'string', enum: ['minimum', 'mempool', 'recent-blocks'] }, blockCapacity: int, mempoolTxs: int, fullRecentBlocks: int, recentBlocks: int }),
    },
    errors: [],
    examples: [none('the fee to pay now')],
  },
  sendRawTransaction: {
    summary: '{tx}: submit one signed transaction (hex)',
    params: [{ name: 'tx', description: 'the signed transaction\'s canonical encoding', required: true, schema: ref('Hex') }],
    result: { name: 'submitted', schema: obj({ id: ref('Hash') }) },
    errors: [ERR.params, ERR.rejected, ERR.reorganising],
    examples: [{ name: 'the devnet key\'s nonce 1', params: [{ name: 'tx', value: EXAMPLE.tx1 }] }],
  },
  sendRawTransactions: {
    summary: '{txs}: submit up to 3000 signed transactions; rejections reported one by one',
    description: 'Signatures are checked in parallel, then each is admitted in order. A bad one is reported with its index, not as an error of the call.',
    params: [{ name: 'txs', description: 'signed transactions, hex', required: true, schema: { type: 'array', maxItems: 3000, items: { type: 'string' } } }],
    result: {
      name: 'verdicts',
      schema: obj({ accepted: { type: 'array', items: ref('Hash') }, rejected: { type: 'array', items: obj({ index: int, code: { type: 'string' }, message: { type: 'string' } }) } }),
    },
    errors: [ERR.params, ERR.reorganising],
    examples: [{ name: 'the devnet key\'s nonce 2', params: [{ name: 'txs', value: [EXAMPLE.tx2] }] }],
  },
  auditState: {
    summary: 'replay the chain from genesis and compare with the stored state and its tree (slow)',
    description: 'A node that begins to stop ends the replay where it is and answers -32002 (AUDIT_STOPPED) rather than hold its stop for the rest of the chain.',
    params: [],
    result: {
      name: 'audit',
      schema: obj({ height: ref('Height'), head: ref('Hash'), accounts: int, supply: ref('Amount'), expectedSupply: ref('Amount'), digest: ref('Hash'), stateRoot: ref('Hash') }),
    },
    errors: [ERR.rejected],
    examples: [none('a full replay')],
  },
  getProof: {
    summary: '{address, block?}: an account proof against the state root of a main-chain block',
    description: `The block is a height or a hash, the tip by default, at most 256 blocks below the tip (a pruned node rolls the state back no deeper than the undo data it keeps: -32003 below that). The proof (docs/PROTOCOL.md, "Account proofs") proves the account, or that there is none (account null); \`cairn verify\` checks it offline.`,
    params: [
      { name: 'address', description: 'the account', required: true, schema: ref('Address') },
      { name: 'block', description: 'a main-chain height or block hash (default the tip)', schema: { oneOf: [ref('Height'), ref('Hash')] } },
    ],
    result: {
      name: 'accountProof',
      schema: obj({ address: ref('Address'), block: proofBlock, account: { oneOf: [obj({ balance: ref('Amount'), nonce: ref('Decimal') }), { type: 'null' }] }, proof: ref('Hex') }),
    },
    errors: [ERR.params, ERR.notFound, ERR.pruned, ERR.reorganising],
    examples: [{ name: 'the devnet key at block 1', params: [{ name: 'address', value: EXAMPLE.address }, { name: 'block', value: 1 }] }],
  },
  getTxProof: {
    summary: '{id}: a confirmed transaction with its proof against its block header',
    params: [{ name: 'id', description: 'the transaction id', required: true, schema: ref('Hash') }],
    result: { name: 'txProof', schema: obj({ id: ref('Hash'), block: proofBlock, proof: ref('Hex') }) },
    errors: [ERR.params, ERR.notFound, ERR.reorganising],
    examples: [{ name: 'a confirmed transfer', params: [{ name: 'id', value: EXAMPLE.txid }] }],
  },
  getHeaders: {
    summary: '{from, count}: up to 2000 main-chain headers (hex) from a height, fewer at the tip',
    params: [
      { name: 'from', description: 'the first height', required: true, schema: ref('Height') },
      { name: 'count', description: 'how many (1 to 2000)', required: true, schema: { type: 'integer', minimum: 1, maximum: 2000 } },
    ],
    result: { name: 'headers', schema: obj({ from: ref('Height'), headers: { type: 'array', items: ref('Hex') } }) },
    errors: [ERR.params, ERR.reorganising],
    examples: [{ name: 'genesis and block 1', params: [{ name: 'from', value: 0 }, { name: 'count', value: 2 }] }],
  },
  help: {
    summary: 'this list: every method and a line about it',
    params: [],
    result: { name: 'help', schema: obj({ methods: { type: 'array', items: obj({ name: { type: 'string' }, description: { type: 'string' } }) } }) },
    errors: [],
    examples: [none('the methods')],
  },
  'rpc.discover': {
    summary: 'this API as an OpenRPC document (methods, parameters, results, errors, examples)',
    params: [],
    result: { name: 'document', schema: { type: 'object', required: ['openrpc', 'info', 'methods', 'components'] } },
    errors: [],
    examples: [none('the document')],
  },
  stop: {
    summary: 'stop the node cleanly, after answering',
    params: [],
    result: { name: 'stopping', schema: obj({ stopping: { type: 'boolean', const: true } }) },
    errors: [],
    examples: [none('stop')],
  },
};

export const RPC_DOC = {
  openrpc: '1.3.2',
  info: {
    title: 'Cairn node JSON-RPC',
    version: '1',
    description:
      'JSON-RPC 2.0 over HTTP POST, on 127.0.0.1:7371 by default. Every request carries `Authorization: Bearer <token>`, the token the node writes to `<datadir>/rpc.json`; any other method (a browser\'s GET) is answered 405, saying so and where the node\'s explorer is. A body is one request, or a batch: an array of 1 to 1000 requests, answered as an array in their order, run 8 at a time; once a batch\'s answers pass 16777216 bytes of JSON, each of its requests not yet run is answered -32006 instead (not run: ask for it in another batch); a body is at most 1048576 bytes (HTTP 413 above). Params are an object (by name; unknown names are refused) or an array (by position, in the order a method lists them here; a null leaves an optional one out; more than it lists is -32602); params of any other kind make no valid request, -32600. An id is answered as it was sent: a number JavaScript cannot hold exactly (above 2^53) in the text it came in, which may be at most 64 characters. An answer of 1400 bytes or more is gzipped for a client whose Accept-Encoding takes it; a connection whose answer waits a minute on a client that takes none of it is cut. A request without an id is a notification: it is run and not answered (HTTP 204 when nothing in the body is answered). Amounts, work and nonces are decimal strings; hashes and ids lower-case hex. A read of the chain or of an account asked while the node is part-way through a reorganisation waits for its end, so that no answer sees the main chain cut at the fork point (a tip below the one before and the one after, blocks above it missing, a transaction both chains confirm unknown); a transaction submitted then waits too, and is judged against the state after it, not the fork point\'s. Neither waits more than ' + `${REORG_WAIT_MS / 1000} s: one thousands of blocks deep takes minutes, so a call still waiting then is answered -32005 (nothing read or submitted; error.data.retryAfterSeconds says when to ask again, error.data.height where the chain stands part-way; the cairn CLI asks again itself, within its own 60 s), and status answers part-way with reorganising: true.`,
  },
  methods: (Object.keys(METHODS) as RpcMethod[]).map((name): RpcMethodDoc => ({ name, ...METHODS[name] })),
  components: {
    schemas: SCHEMAS,
    errors: {
      ParseError: { code: RPC_ERRORS.PARSE_ERROR, message: 'the body is not JSON' },
      InvalidRequest: { code: RPC_ERRORS.INVALID_REQUEST, message: 'not a JSON-RPC 2.0 request (also: no token, 401; not a POST, 405)' },
      MethodNotFound: { code: RPC_ERRORS.METHOD_NOT_FOUND, message: 'no such method' },
      InvalidParams: ERR.params,
      InternalError: { code: RPC_ERRORS.INTERNAL_ERROR, message: 'the node failed to answer' },
      NotFound: ERR.notFound,
      Rejected: ERR.rejected,
      Pruned: ERR.pruned,
      Stopping: { code: RPC_ERRORS.STOPPING, message: 'the node is stopping: a call it was answering when its stop began, cut short' },
      Reorganising: ERR.reorganising,
    },
  },
} as const;

export function methodDoc(name: string): RpcMethodDoc | undefined {
  return Object.hasOwn(METHODS, name) ? RPC_DOC.methods.find((m) => m.name === name) : undefined;
}
