import { execFileSync, spawnSync } from 'node:child_process';

/**
 * The path of `binary`, installing Debian's `pkg` for it when it is missing (CI machines start
 * without it; the session runs as root, as CI does). Throws, saying why, when it cannot be had:
 * a test that needs it must fail rather than pass without it.
 */
export function ensureDebianBinary(binary: string, pkg: string): string {
  const found = () => {
    const r = spawnSync('sh', ['-c', `command -v ${binary}`], { encoding: 'utf8' });
    return r.status === 0 ? r.stdout.trim() : undefined;
  };
  const existing = found();
  if (existing) return existing;
  const apt = (args: string[]) => execFileSync('apt-get', args, { stdio: 'ignore', timeout: 600_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  try {
    try {
      apt(['install', '-y', '--no-install-recommends', pkg]);
    } catch {
      apt(['update']);
      apt(['install', '-y', '--no-install-recommends', pkg]);
    }
  } catch (err) {
    throw new Error(`this test needs ${binary} from Debian's package "${pkg}", which is not installed and could not be installed (apt-get install -y ${pkg}: ${(err as Error).message.split('\n')[0]})`);
  }
  const installed = found();
  if (!installed) throw new Error(`apt-get installed "${pkg}" but ${binary} is still not on PATH`);
  return installed;
}
