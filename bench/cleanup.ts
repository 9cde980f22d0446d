/**
 * The suite leaves the machine as it found it, also when a section fails or
 * someone presses Ctrl-C: child processes (iperf3, effect benchmarks, the
 * BPF statistics holder) are killed, daemons stopped (with -R, so they roll
 * back their own changes) and namespaces deleted.
 */
import type { ChildProcess } from 'node:child_process';
import { stopAllDaemons } from '../test/support/daemon';
import { cleanupNamespaces } from '../test/support/netns';

const children = new Set<ChildProcess>();
const restorers = new Set<() => void>();
let aborted = false;

/** Kills `child` in cleanup if it is still running then. */
export function track<T extends ChildProcess>(child: T): T {
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

/** Registers a synchronous restore step; call the returned function once it has been done normally. */
export function onCleanup(restore: () => void): () => void {
  restorers.add(restore);
  return () => restorers.delete(restore);
}

export function wasAborted(): boolean {
  return aborted;
}

export function throwIfAborted(): void {
  if (aborted) throw new Error('benchmark interrupted');
}

function killChildren(signal: NodeJS.Signals): void {
  for (const child of children) {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

function runRestorers(): void {
  for (const restore of [...restorers]) {
    try {
      restore();
    } catch (err) {
      process.stderr.write(`cleanup step failed: ${err instanceof Error ? err.message : String(err)}\n`);
    }
    restorers.delete(restore);
  }
}

/** Everything, in order: children first (they use the namespaces), then settings, daemons, namespaces. */
export async function cleanupAll(): Promise<void> {
  // Effect benchmarks turn SIGTERM into an orderly exit that deletes their namespaces; give them a moment.
  killChildren('SIGTERM');
  const deadline = Date.now() + 10_000;
  while (children.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  killChildren('SIGKILL');
  runRestorers();
  await stopAllDaemons();
  cleanupNamespaces();
}

export function installSignalHandlers(): void {
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(signal, () => {
      aborted = true;
      process.stderr.write(`\n${signal}: stopping the benchmark and cleaning up...\n`);
      cleanupAll()
        .catch((err: unknown) => process.stderr.write(`cleanup failed: ${err instanceof Error ? err.message : String(err)}\n`))
        .finally(() => process.exit(code));
    });
  }
  // Last resort for a crash: the support modules' own exit hooks kill daemons and delete namespaces.
  process.on('exit', () => {
    killChildren('SIGKILL');
    runRestorers();
  });
}

/** A benchmark's entry point: signal handlers, the run, its failure reported, and cleanup whatever happens. */
export function runBenchmark(main: () => Promise<void>): void {
  installSignalHandlers();
  main()
    .catch((err: unknown) => {
      process.stderr.write(`benchmark failed: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exitCode = 1;
    })
    .finally(() => cleanupAll());
}
