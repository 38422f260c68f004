/**
 * What a JSON-RPC body holds that the server would refuse: params given by position, named by the
 * order a method lists them in.
 */

/**
 * Positional params named by `names`, the order the method lists them in (its OpenRPC entry); a
 * message saying what is wrong when there are more of them than names. A null stands for an
 * optional param left out, as bitcoind takes it (getBlock [null, hash]): no param takes null.
 */
export function paramsByPosition(method: string, names: readonly string[], values: readonly unknown[]): Record<string, unknown> | string {
  if (values.length > names.length) {
    const takes = names.length === 0 ? 'no params' : `at most ${names.length} param${names.length === 1 ? '' : 's'} by position (${names.join(', ')})`;
    return `${method} takes ${takes}, got ${values.length}`;
  }
  const params: Record<string, unknown> = {};
  values.forEach((value, i) => {
    if (value !== null) params[names[i]!] = value;
  });
  return params;
}
