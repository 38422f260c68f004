import { open, readFile, stat } from 'node:fs/promises';

/**
 * The text of a file the user names, read whole: a regular file, or a pipe (`<(…)`, `/dev/stdin`
 * fed by one), never more than `maxBytes`. A file is refused by its size before it is read; a
 * pipe, which has none, once it has given more (at most `maxBytes` held meanwhile). Anything else
 * is refused unread: a device (/dev/zero) would be read until memory ran out, and a file past
 * V8's longest string fails with "Invalid string length" after seconds. `refuse` words each
 * refusal for its caller (`tooLarge`: refused for its size, not its kind), `what` names the file
 * in it ("a genesis file"); what the file system says goes up as it is thrown.
 */
export async function readCappedText(file: string, what: string, maxBytes: number, refuse: (why: string, tooLarge: boolean) => Error): Promise<string> {
  const st = await stat(file);
  const over = `the ${maxBytes} ${what} may have`;
  if (st.isFIFO()) {
    const handle = await open(file, 'r');
    try {
      return await readCappedStream(handle.createReadStream({ autoClose: false }), maxBytes, () => refuse(`the pipe gave more bytes than ${over}`, true));
    } finally {
      await handle.close();
    }
  }
  // A directory fails the read as itself (EISDIR), which the caller's file errors put in words.
  if (!st.isFile() && !st.isDirectory()) throw refuse('not a regular file, nor a pipe', false);
  if (st.size > maxBytes) throw refuse(`${st.size} bytes, over ${over}`, true);
  return await readFile(file, 'utf8');
}

/**
 * The text a stream gives (a pipe; stdin, for a FILE given as `-`), refused by `tooLarge` once it
 * has given more than `maxBytes`. Stdin as Node gives it may be a socket (a child's, in CI), which
 * /dev/stdin does not open again: read as the stream it is.
 */
export async function readCappedStream(stream: AsyncIterable<Buffer | string>, maxBytes: number, tooLarge: () => Error): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    total += bytes.length;
    if (total > maxBytes) throw tooLarge();
    chunks.push(bytes);
  }
  return Buffer.concat(chunks, total).toString('utf8');
}
