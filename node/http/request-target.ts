/**
 * The path and query a request asks for, from its request target (`req.url`). An origin-form
 * target is read as the path it is: `//x/y` is the path `//x/y`, whose first segment is empty.
 * `new URL(target, base)` would read it as a URL reference with the authority `x` (and the path
 * `/y`), and throws when that is no host name (`//%40(%3C/`): in a listener that does not catch it,
 * one request from any local process or web page ended the node. Undefined for a target this
 * machine's servers do not answer (`*`, or garbage).
 */
export function requestTarget(target: string | undefined): URL | undefined {
  const raw = target ?? '/';
  try {
    // An absolute-form target (`http://host/path`, which a proxy sends) is a URL of its own.
    return raw.startsWith('/') ? new URL(`http://localhost${raw}`) : new URL(raw);
  } catch {
    return undefined;
  }
}
