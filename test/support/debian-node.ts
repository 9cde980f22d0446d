/**
 * Debian 12's own Node.js (18.20), unpacked from Debian's packages into a
 * temporary directory, so the packaged daemon can be run on the Node.js it
 * depends on when the machine's node is another one. The .debs are cached in
 * /var/cache/bpftune-test (outside the repository) and downloaded with
 * apt-get only when missing; nothing is installed.
 *
 * Debian's node loads some of its built-in modules (acorn, cjs-module-lexer,
 * undici) from /usr/share/nodejs at start-up; the machine need not have them,
 * so node runs in a mount namespace of its own where the unpacked
 * /usr/share is laid over the real one (an overlay; nothing else changes).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const DEB_CACHE = '/var/cache/bpftune-test';
const NODE_MAJOR = '18';
/** Debian's node links libc-ares2 and loads these from /usr/share/nodejs. */
const EXTRA_PACKAGES = ['libc-ares2', 'node-acorn', 'node-cjs-module-lexer', 'node-undici'];

export interface DebianNode {
  /** e.g. v18.20.4 */
  version: string;
  /** argv that runs Debian's node with these arguments. */
  command(args: string[]): string[];
  remove(): void;
}

function aptGet(args: string[]): void {
  execFileSync('apt-get', ['-o', 'DPkg::Lock::Timeout=900', ...args], { cwd: DEB_CACHE, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** The newest nodejs 18.x the configured Debian archives offer (the machine's own node may be another). */
function debianNodeVersion(): string {
  const find = () =>
    spawnSync('apt-cache', ['madison', 'nodejs'], { encoding: 'utf8' })
      .stdout.split('\n')
      .map((line) => line.split('|')[1]?.trim() ?? '')
      .find((v) => v.startsWith(`${NODE_MAJOR}.`));
  let version = find();
  if (!version) {
    aptGet(['update', '-qq']);
    version = find();
  }
  if (!version) throw new Error(`no nodejs ${NODE_MAJOR}.x in the apt archives (apt-cache madison nodejs); is this Debian 12?`);
  return version;
}

function cached(pkg: string): string | undefined {
  return readdirSync(DEB_CACHE).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
}

export function debianNode(): DebianNode {
  mkdirSync(DEB_CACHE, { recursive: true });
  const version = debianNodeVersion();
  const fileVersion = encodeURIComponent(version).replace(/%2B/g, '+').replace(/%7E/g, '~');
  const wanted = [`nodejs_${fileVersion}_`, `libnode108_${fileVersion}_`];
  if (!wanted.every((prefix) => readdirSync(DEB_CACHE).some((f) => f.startsWith(prefix)))) {
    aptGet(['download', '-qq', `nodejs=${version}`, `libnode108=${version}`]);
  }
  const missing = EXTRA_PACKAGES.filter((p) => !cached(p));
  if (missing.length) aptGet(['download', '-qq', ...missing]);

  const root = mkdtempSync(path.join(os.tmpdir(), 'bpftune-debian-node-'));
  const debs = readdirSync(DEB_CACHE).filter(
    (f) => wanted.some((prefix) => f.startsWith(prefix)) || EXTRA_PACKAGES.some((p) => f.startsWith(`${p}_`)),
  );
  for (const deb of debs) execFileSync('dpkg', ['-x', path.join(DEB_CACHE, deb), root]);

  const libdir = execFileSync('dpkg-architecture', ['-qDEB_HOST_MULTIARCH'], { encoding: 'utf8' }).trim();
  const node = path.join(root, 'usr', 'bin', 'node');
  const script =
    `mount -t overlay overlay -o lowerdir=${root}/usr/share:/usr/share /usr/share && ` +
    `PATH=${root}/usr/bin:$PATH LD_LIBRARY_PATH=${root}/usr/lib/${libdir} exec ${node} "$@"`;
  const command = (args: string[]) => ['unshare', '--mount', '--propagation', 'slave', 'sh', '-c', script, 'node', ...args];
  const [bin, ...rest] = command(['--version']);
  const reported = execFileSync(bin, rest, { encoding: 'utf8' }).trim();
  return { version: reported, command, remove: () => rmSync(root, { recursive: true, force: true }) };
}
