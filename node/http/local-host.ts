import { isIP } from 'node:net';

/**
 * Whether a server bound to `boundHost` should refuse a request whose `Host` header is
 * `hostHeader`: DNS rebinding. A web page on evil.example points its own name at 127.0.0.1 and is
 * then of the same origin as a server on this machine, free to read its answers; its requests
 * still say `Host: evil.example`. A server bound to loopback so answers only a Host that is an IP
 * address, `localhost` or a name under it (which browsers resolve to this machine whatever DNS
 * says), or one of `names` (a reverse proxy that passes its own; `*`: any). A server bound to
 * another address was published on purpose and answers every name. A request without a Host is
 * no browser's.
 */
export function hostRefused(boundHost: string, hostHeader: string | undefined, names: readonly string[] = []): boolean {
  if (!isLoopbackHost(boundHost) || names.includes('*') || hostHeader === undefined) return false;
  const name = nameOf(hostHeader);
  if (name === undefined) return true;
  if (isIP(name) !== 0 || isLocalhostName(name)) return false;
  return !names.some((n) => n.toLowerCase().replace(/\.$/, '') === name);
}

/** Whether a listening address (as --http-host takes it, or `localhost`) is this machine's loopback. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (isLocalhostName(h)) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return new URL(`http://[${h}]/`).hostname === '[::1]';
  return false;
}

function isLocalhostName(name: string): boolean {
  return name === 'localhost' || name.endsWith('.localhost');
}

/** The name a Host header gives, lower case, without brackets, port or a final dot; undefined when it is no host. */
function nameOf(header: string): string | undefined {
  let url: URL;
  try {
    url = new URL(`http://${header}/`);
  } catch {
    return undefined;
  }
  if (url.username !== '' || url.password !== '' || url.pathname !== '/' || url.search !== '' || url.hash !== '') return undefined;
  return url.hostname.replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
}
