/** Helpers for tests of the node's HTTP faces: JSON answers, an event stream read as it comes, connection caps. */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly bytes: Uint8Array;
  json<T = unknown>(): T;
}

export async function get(url: string, init: RequestInit = {}): Promise<HttpAnswer> {
  const response = await fetch(url, { signal: AbortSignal.timeout(20_000), ...init });
  const bytes = new Uint8Array(await response.arrayBuffer());
  const text = new TextDecoder().decode(bytes);
  return { status: response.status, headers: response.headers, text, bytes, json: <T>() => JSON.parse(text) as T };
}

export interface StreamEvent {
  readonly id: string | undefined;
  readonly event: string;
  readonly data: Record<string, unknown>;
}

/** An open `/events` stream: every event so far in `events`, and a wait for the one you need. */
export interface EventStream {
  readonly events: StreamEvent[];
  waitFor(what: string, predicate: (events: StreamEvent[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): void;
}

export async function openStream(url: string, headers: Record<string, string> = {}): Promise<EventStream> {
  const abort = new AbortController();
  const response = await fetch(url, { headers, signal: abort.signal });
  if (response.status !== 200) throw new Error(`events: HTTP ${response.status} ${await response.text()}`);
  const events: StreamEvent[] = [];
  const waiters = new Set<() => void>();
  let buffer = '';
  let ended = false;
  void (async () => {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let cut;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          let id: string | undefined;
          let event = 'message';
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('id: ')) id = line.slice(4);
            else if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('data: ')) data += line.slice(6);
          }
          if (data) events.push({ id, event, data: JSON.parse(data) as Record<string, unknown> });
        }
        for (const w of waiters) w();
      }
    } catch {
      // aborted by close()
    } finally {
      ended = true;
      for (const w of waiters) w();
    }
  })();
  return {
    events,
    async waitFor(what, predicate, timeoutMs = 20_000) {
      if (predicate(events)) return;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(events.map((e) => [e.event, e.data.seq]))}`));
        }, timeoutMs);
        const check = () => {
          if (predicate(events) || ended) {
            clearTimeout(timer);
            waiters.delete(check);
            if (predicate(events)) resolve();
            else reject(new Error(`the stream ended before ${what}`));
          }
        };
        waiters.add(check);
      });
    },
    close: () => abort.abort(),
  };
}

/**
 * A keep-alive connection that has had its answer to `GET path` (so the server holds it open), or
 * the status 'closed' when the server cut it before answering.
 */
export function holdConnection(url: string, path: string): Promise<{ socket: Socket; status: string }> {
  return new Promise((resolve) => {
    const { hostname, port } = new URL(url);
    const socket = connect(Number(port), hostname.replace(/^\[(.*)\]$/, '$1'));
    let text = '';
    socket.on('data', (d: Buffer) => {
      text += d.toString('utf8');
      if (text.includes('\r\n\r\n')) resolve({ socket, status: text.split(' ')[1]! });
    });
    socket.on('error', () => {});
    socket.on('close', () => resolve({ socket, status: 'closed' }));
    socket.write(`GET ${path} HTTP/1.1\r\nHost: ${hostname}\r\n\r\n`);
  });
}

/**
 * That the server at `url` holds `cap` connections from this client and cuts the next, and that a
 * closed one frees its slot (the server hears of the close a moment later).
 */
export async function checkConnectionCap(url: string, cap: number, path: string): Promise<void> {
  const held: { socket: Socket; status: string }[] = [];
  try {
    for (let i = 0; i < cap; i++) held.push(await holdConnection(url, path));
    assert.deepEqual(held.filter((h) => h.status === 'closed').length, 0, `the first ${cap} connections are answered`);
    assert.equal((await holdConnection(url, path)).status, 'closed', `connection ${cap + 1}`);
    held.pop()!.socket.destroy();
    for (let attempt = 0; ; attempt++) {
      const again = await holdConnection(url, path);
      if (again.status !== 'closed') {
        held.push(again);
        break;
      }
      assert.ok(attempt < 100, 'the freed slot did not come back');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    for (const h of held) h.socket.destroy();
  }
}

/**
 * A client that sends `request` (whole HTTP/1.1 request text) `times` over, pipelined, and then
 * reads nothing, or reads once every `readEveryMs` when given (a slow reader): what it
 * has read so far, and whether the connection has ended (by either side).
 */
export function stallReader(url: string, request: string, times: number, readEveryMs?: number): { socket: Socket; read: () => string; ended: () => boolean } {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname.replace(/^\[(.*)\]$/, '$1'));
  socket.on('error', () => {});
  socket.write(request.repeat(times));
  let text = '';
  socket.on('data', (d: Buffer) => {
    text += d.toString('latin1');
    socket.pause(); // one read at a time
  });
  socket.pause();
  const reads = readEveryMs === undefined ? undefined : setInterval(() => socket.resume(), readEveryMs);
  let closed = false;
  socket.on('close', () => {
    closed = true;
    clearInterval(reads);
  });
  return { socket, read: () => text, ended: () => closed };
}

/** Whether a request to `url` is answered at all (a server at its connection cap cuts it instead). */
export async function answered(url: string, init: RequestInit = {}): Promise<boolean> {
  try {
    await get(url, init);
    return true;
  } catch {
    return false;
  }
}
