/**
 * bpftune entry point: parses options like the reference, then either
 * answers -h/-V/-P/-S/-q and exits, or runs the daemon until SIGINT/SIGTERM.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { Daemon } from '../core/daemon';
import { narrowCapabilities } from '../core/capabilities';
import { keepHeapSmall, releaseStartupMemory, withNodeFlags } from '../core/heap';
import { Mounts, TRACEFS_DIR } from '../core/mounts';
import { createLogger, errorText, type Logger } from '../core/log';
import { daemonLogSink } from '../core/log-sink';
import { ADDON_PATH, native } from '../core/native';
import { builtinLibdir, DEFAULT_LOCAL_LIBDIR, defaultCgroupDirectory, VERSION } from '../core/paths';
import { parseArgs, usage, UsageError, type CliOptions } from './args';
import { NoDaemonError, query } from './query-client';
import { ServiceStatus } from './service';
import { supportReport } from './support';

async function runDaemon(options: CliOptions, log: Logger, service: ServiceStatus, capabilities: { ok: boolean; message: string }): Promise<number> {
  const nativeBinding = native();
  keepHeapSmall(nativeBinding);
  if (capabilities.ok) log.info(capabilities.message);
  else log.warn(capabilities.message);
  try {
    const running = await query('status');
    log.error(`bpftune is already running:\n${running.trimEnd()}\nstop it first, or query it with 'bpftune -q'`);
    return 1;
  } catch {
    // Nothing answers: we are the only daemon.
  }
  const daemon = new Daemon(nativeBinding, log, {
    learningRate: options.learningRate,
    cgroupPath: options.cgroup ?? defaultCgroupDirectory(),
    legacy: options.legacy,
    allow: options.allow,
    libdir: options.libdir ?? DEFAULT_LOCAL_LIBDIR,
    port: options.port ?? 0,
    rollback: options.rollback,
    advisory: options.advise,
    metrics:
      options.metrics || options.metricsTextfile !== undefined
        ? { listen: options.metrics, textfileDir: options.metricsTextfile && path.resolve(options.metricsTextfile) }
        : undefined,
  });

  // A daemon must not die on one bad event or plugin: log and carry on.
  process.on('uncaughtException', (err) => log.error(`internal error (continuing): ${err.stack ?? errorText(err)}`));
  process.on('unhandledRejection', (err) => log.error(`internal error (continuing): ${errorText(err)}`));

  const stopped = new Promise<number>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      log.debug(`received ${signal}; stopping`);
      service.stopping();
      daemon.stop().then(
        () => resolve(0),
        (err) => {
          log.error(`error while stopping: ${errorText(err)}`);
          resolve(1);
        },
      );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });

  try {
    await daemon.start();
  } catch (err) {
    log.error(`bpftune could not start: ${errorText(err)}`);
    await daemon.stop().catch(() => undefined);
    return 1;
  }
  service.ready(daemon);
  releaseStartupMemory();
  return stopped;
}

/** -D: re-run ourselves without -D, detached, and return at once. */
function daemonize(argv: readonly string[]): number {
  const args = argv.filter((a) => a !== '-D' && a !== '--daemon');
  const child = spawn(process.execPath, [process.argv[1], ...args], { detached: true, stdio: 'ignore' });
  child.unref();
  return 0;
}

export async function main(argv: readonly string[]): Promise<number> {
  let options: CliOptions;
  try {
    options = parseArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n`);
      if (err.showUsage) process.stderr.write(usage());
      return 1;
    }
    throw err;
  }
  if (options.cgroup !== undefined) options.cgroup = path.resolve(options.cgroup);
  if (options.help) {
    process.stdout.write(usage());
    return 0;
  }
  if (options.version) {
    process.stdout.write(`bpftune v${VERSION}\n`);
    return 0;
  }
  if (options.printLibdir) {
    process.stdout.write(`${builtinLibdir()}\n`);
    return 0;
  }
  if (options.query !== undefined) {
    try {
      process.stdout.write(await query(options.query, options.port));
      return 0;
    } catch (err) {
      process.stderr.write(`bpftune: ${err instanceof NoDaemonError ? err.message : `query failed: ${errorText(err)}`}\n`);
      return 1;
    }
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('bpftune: must run as root (it loads BPF programs and writes sysctls)\n');
    return 1;
  }
  if (options.support) {
    const cgroupPath = options.cgroup ?? defaultCgroupDirectory();
    const mounts = new Mounts(native());
    try {
      // What the daemon would mount; a kind that cannot attach without it is reported as unsupported.
      await mounts.ensure('cgroup2', cgroupPath, 'pass an existing cgroup v2 mount with -c DIR').catch(() => undefined);
      await mounts.ensure('tracefs', TRACEFS_DIR, 'tracepoint programs cannot attach').catch(() => undefined);
      const report = await supportReport(native(), cgroupPath, [builtinLibdir(), options.libdir ?? DEFAULT_LOCAL_LIBDIR], options.legacy);
      process.stdout.write(report.lines.join('\n') + '\n');
      return report.supported ? 0 : 1;
    } finally {
      await mounts.release();
    }
  }
  if (options.daemon) return daemonize(argv);
  const nativeBinding = native();
  // First, before the environment is consumed (NOTIFY_SOCKET): may execve and not return.
  const capabilities = narrowCapabilities(nativeBinding, ADDON_PATH, [...withNodeFlags(process.execArgv), process.argv[1], ...argv]);
  const send = (socketPath: string, data: Buffer) => nativeBinding.sendUnixDatagram(socketPath, data);
  const service = ServiceStatus.fromEnvironment(send, (message) => log.warn(message));
  const log = createLogger(service.watch(daemonLogSink(nativeBinding, options.stderr)), options.debug);
  nativeBinding.setLibbpfDebug(options.debug);
  return runDaemon(options, log, service, capabilities);
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`bpftune: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
