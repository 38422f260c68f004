import { readdir, readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { IncomingMessage, ServerResponse } from 'node:http';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};

/**
 * The explorer's files (explorer/ in the sources, dist/explorer in the build), read once at start
 * and served from memory: `/` is its page, `/assets/NAME` the rest. Every answer carries an ETag
 * and `no-cache`, so a browser revalidates (a 304, no body) and never runs a stale script after
 * the node is upgraded. Nothing is fetched from anywhere else.
 */
export class StaticFiles {
  private readonly files = new Map<string, { body: Buffer; type: string; etag: string }>();
  private readonly dir: string;

  constructor(dir = fileURLToPath(new URL('../../explorer/', import.meta.url))) {
    this.dir = dir;
  }

  async load(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return; // a build without the explorer serves the API alone
    }
    for (const name of names) {
      const type = TYPES[extname(name)];
      if (!type) continue;
      const body = await readFile(join(this.dir, name));
      this.files.set(name, { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` });
    }
  }

  /** Whether `path` is one of the explorer's files. */
  has(path: string): boolean {
    return this.file(path) !== undefined;
  }

  private file(path: string) {
    const name = path === '/' ? 'index.html' : path.startsWith('/assets/') ? path.slice('/assets/'.length) : undefined;
    return name !== undefined && !name.includes('/') ? this.files.get(name) : undefined;
  }

  /** Whether the path was one of the explorer's (and has been answered). */
  serve(path: string, req: IncomingMessage, res: ServerResponse): boolean {
    const file = this.file(path);
    if (!file) return false;
    req.resume();
    const headers = { 'content-type': file.type, etag: file.etag, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' };
    if (req.headers['if-none-match'] === file.etag) {
      res.writeHead(304, headers).end();
      return true;
    }
    res.writeHead(200, { ...headers, 'content-length': file.body.length });
    res.end(req.method === 'HEAD' ? undefined : file.body);
    return true;
  }
}
