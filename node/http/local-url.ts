/**
 * The URL a client on this machine reaches a server listening on `host`:`port` by: a wildcard
 * host on loopback, an IPv6 host in brackets (RFC 3986), as the endpoint file and the logs give it.
 */
export function localUrl(host: string, port: number, path = '/'): string {
  const reach = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${reach.includes(':') ? `[${reach}]` : reach}:${port}${path}`;
}
