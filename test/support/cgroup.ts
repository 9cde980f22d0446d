/**
 * A cgroup v2 of the test's own, for cgroup-attached programs (sockops):
 * attached at the root they see every socket on the machine, including other
 * engineers' tests. The daemon is given a bind mount of this cgroup with -c
 * (a cgroup2 mount whose root is this cgroup), and the test's processes are
 * moved into it before they exec, so the program sees their sockets only.
 * remove() kills what is left inside and deletes it; so does process exit.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const live = new Set<TestCgroup>();

/** Where the cgroup v2 hierarchy's root is mounted, if anywhere. */
function cgroup2Root(): string | undefined {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = line.split(' - ');
    const fields = left?.split(' ') ?? [];
    if (right?.split(' ')[0] === 'cgroup2' && fields[3] === '/') return fields[4];
  }
  return undefined;
}

export class TestCgroup {
  /** The cgroup's directory in the hierarchy. */
  readonly dir: string;
  /** Pass to the daemon as -c: a cgroup2 mount whose root is this cgroup. */
  readonly mountPoint: string;
  private readonly ownRoot: string | undefined;
  /** Started with run() and not yet exited; killed first by remove(). */
  private readonly children = new Set<ChildProcess>();

  constructor() {
    let root = cgroup2Root();
    if (root === undefined) {
      this.ownRoot = mkdtempSync(path.join(os.tmpdir(), 'bpftune-test-cgroot-'));
      execFileSync('mount', ['-t', 'cgroup2', 'none', this.ownRoot]);
      root = this.ownRoot;
    }
    this.dir = path.join(root, `bpftune-test-${process.pid}-${Date.now()}`);
    mkdirSync(this.dir);
    this.mountPoint = mkdtempSync(path.join(os.tmpdir(), 'bpftune-test-cgroup-'));
    execFileSync('mount', ['--bind', this.dir, this.mountPoint]);
    live.add(this);
  }

  /**
   * The argv that runs command inside this cgroup: the shell joins it, then
   * execs (ip netns exec remounts /sys, so the join happens before).
   */
  wrap(command: string, args: string[]): [string, string[]] {
    return ['sh', ['-c', `echo $$ > ${path.join(this.dir, 'cgroup.procs')} && exec "$@"`, 'sh', command, ...args]];
  }

  /** Runs `command` inside this cgroup; `done` resolves with its stdout when it exits 0, else rejects with its output. */
  run(command: string, args: string[]): { child: ChildProcess; done: Promise<string> } {
    const [cmd, argv] = this.wrap(command, args);
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.add(child);
    let out = '';
    let err = '';
    child.stdout?.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr?.on('data', (c: Buffer) => (err += c.toString('utf8')));
    const done = new Promise<string>((resolve, reject) =>
      // 'close', not 'exit': only then has all its output been read.
      child.once('close', (code) => {
        this.children.delete(child);
        if (code === 0) resolve(out);
        else reject(new Error(`${command} ${args.join(' ')} failed (${code}): ${err}${out}`));
      }),
    );
    return { child, done };
  }

  pids(): number[] {
    try {
      return readFileSync(path.join(this.dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  }

  remove(): void {
    if (!live.delete(this)) return;
    for (const child of this.children) child.kill('SIGKILL');
    // Only processes this test started are in here.
    for (let attempt = 0; attempt < 50 && this.pids().length; attempt++) {
      for (const pid of this.pids()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      spawnSync('sleep', ['0.05']);
    }
    spawnSync('umount', ['-l', this.mountPoint], { stdio: 'ignore' });
    rmSync(this.mountPoint, { recursive: true, force: true });
    try {
      rmdirSync(this.dir);
    } catch {
      // A process that would not die keeps it: left for an administrator, as it may hold a socket.
    }
    if (this.ownRoot) {
      spawnSync('umount', ['-l', this.ownRoot], { stdio: 'ignore' });
      rmSync(this.ownRoot, { recursive: true, force: true });
    }
  }
}

process.on('exit', () => {
  for (const c of [...live]) c.remove();
});
