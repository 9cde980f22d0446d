/**
 * Command-line options, getopt_long-compatible with oracle/bpftune: short
 * options may be bundled (-sd) and take values attached or separate (-r4,
 * -r 4); long ones take --opt=value or --opt value.
 */
import { DEFAULT_LEARNING_RATE } from '../core/learning-rate';
import { parseListenAddress, type ListenAddress } from '../metrics/address';

export interface CliOptions {
  advise: boolean;
  allow: string[];
  cgroup?: string;
  debug: boolean;
  daemon: boolean;
  help: boolean;
  libdir?: string;
  legacy: boolean;
  metrics?: ListenAddress;
  metricsTextfile?: string;
  port?: number;
  printLibdir: boolean;
  query?: string;
  learningRate: number;
  rollback: boolean;
  stderr: boolean;
  support: boolean;
  version: boolean;
}

export class UsageError extends Error {
  constructor(
    message: string,
    /** Print the usage text after the message. */
    readonly showUsage: boolean,
  ) {
    super(message);
  }
}

interface OptionSpec {
  /** Absent for long-only options (ours, not the reference's). */
  short?: string;
  long: string;
  arg?: string;
  help: string;
  apply(o: CliOptions, value: string): void;
}

const OPTIONS: OptionSpec[] = [
  {
    long: 'advise',
    help: 'advisory mode: tuners run and log what they would change (-q advice, -q sysctl.d); nothing is changed',
    apply: (o) => (o.advise = true),
  },
  { short: 'a', long: 'allow', arg: 'TUNER', help: 'load only this tuner (repeatable)', apply: (o, v) => o.allow.push(tunerName(v)) },
  { short: 'c', long: 'cgroup', arg: 'DIR', help: 'cgroup v2 directory for cgroup programs (mounted if needed)', apply: (o, v) => (o.cgroup = v) },
  { short: 'd', long: 'debug', help: 'debug logging', apply: (o) => (o.debug = true) },
  { short: 'D', long: 'daemon', help: 'run in the background', apply: (o) => (o.daemon = true) },
  { short: 'h', long: 'help', help: 'this help', apply: (o) => (o.help = true) },
  { short: 'l', long: 'libdir', arg: 'DIR', help: 'plugin directory (default /usr/local/lib64/bpftune)', apply: (o, v) => (o.libdir = parseLibdir(v)) },
  { short: 'L', long: 'legacy', help: 'prefer programs that need no BTF (tracepoints, kprobes)', apply: (o) => (o.legacy = true) },
  { long: 'metrics', arg: 'ADDR:PORT', help: 'serve Prometheus metrics at http://ADDR:PORT/metrics (off by default)', apply: (o, v) => (o.metrics = parseMetricsAddress(v)) },
  { long: 'metrics-textfile', arg: 'DIR', help: "write DIR/bpftune.prom every 15 s for node_exporter's textfile collector", apply: (o, v) => (o.metricsTextfile = v) },
  { short: 'p', long: 'port', arg: 'PORT', help: 'TCP port for queries on localhost', apply: (o, v) => (o.port = parsePort(v)) },
  { short: 'P', long: 'print-libdir', help: 'print the built-in tuner directory and exit', apply: (o) => (o.printLibdir = true) },
  { short: 'q', long: 'query', arg: 'QUERY', help: 'ask the running daemon (-q help lists queries)', apply: (o, v) => (o.query = v) },
  { short: 'r', long: 'learning_rate', arg: 'N', help: 'learning rate 0-4 (default 4: 25% steps)', apply: (o, v) => (o.learningRate = parseLearningRate(v)) },
  { short: 'R', long: 'rollback', help: 'roll back every change on exit', apply: (o) => (o.rollback = true) },
  { short: 's', long: 'stderr', help: 'log to stderr instead of syslog', apply: (o) => (o.stderr = true) },
  { short: 'S', long: 'support', help: 'report what this system supports and exit', apply: (o) => (o.support = true) },
  { short: 'V', long: 'version', help: 'print the version and exit', apply: (o) => (o.version = true) },
];

/**
 * Scripts written for the reference name tuners by their shared object
 * ("tcp_buffer_tuner.so", or a path to it) or without the extension
 * ("tcp_buffer_tuner"); both mean our "tcp_buffer".
 */
export function tunerName(spelling: string): string {
  return spelling.replace(/^.*\//, '').replace(/\.so$/, '').replace(/_tuner$/, '');
}

/**
 * Plugins run as root, so their directory is named exactly: a relative path
 * would depend on where the daemon was started, and "." or ".." components
 * defeat the ownership checks made on each directory of the path.
 */
function parseLibdir(value: string): string {
  if (!value.startsWith('/')) throw new UsageError(`plugin directory '${value}' must be an absolute path`, false);
  if (value.split('/').some((c) => c === '.' || c === '..')) {
    throw new UsageError(`plugin directory '${value}' must not contain '.' or '..' components`, false);
  }
  return value.length > 1 ? value.replace(/\/+$/, '') : value;
}

function parseLearningRate(value: string): number {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(n >= 0 && n <= 4)) throw new UsageError('values 0-4 are supported', false);
  return n;
}

function parseMetricsAddress(value: string): ListenAddress {
  try {
    return parseListenAddress(value);
  } catch (err) {
    throw new UsageError(`--metrics: ${err instanceof Error ? err.message : String(err)}`, false);
  }
}

function parsePort(value: string): number {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= 65535)) throw new UsageError(`invalid port '${value}': expected 1-65535`, true);
  return n;
}

export function usage(): string {
  const lines = OPTIONS.map((o) => {
    const flags = `${o.short ? `-${o.short},` : '   '} --${o.long}${o.arg ? ` ${o.arg}` : ''}`;
    return `  ${flags.padEnd(30)} ${o.help}`;
  });
  return `Usage: bpftune [OPTIONS]\n${lines.join('\n')}\nQueries, logging, files, signals and examples: man bpftune\n`;
}

export function parseArgs(argv: readonly string[]): CliOptions {
  const options: CliOptions = {
    advise: false,
    allow: [],
    debug: false,
    daemon: false,
    help: false,
    legacy: false,
    printLibdir: false,
    learningRate: DEFAULT_LEARNING_RATE,
    rollback: false,
    stderr: false,
    support: false,
    version: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = arg.slice(2, eq < 0 ? undefined : eq);
      const spec = OPTIONS.find((o) => o.long === name);
      if (!spec) throw new UsageError(`unrecognized option '${arg}'`, true);
      let value = eq < 0 ? undefined : arg.slice(eq + 1);
      if (spec.arg && value === undefined) {
        value = argv[++i];
        if (value === undefined) throw new UsageError(`option '--${name}' requires an argument`, true);
      } else if (!spec.arg && value !== undefined) {
        throw new UsageError(`option '--${name}' doesn't allow an argument`, true);
      }
      spec.apply(options, value ?? '');
    } else if (arg.startsWith('-') && arg.length > 1) {
      for (let j = 1; j < arg.length; j++) {
        const spec = OPTIONS.find((o) => o.short === arg[j]);
        if (!spec) throw new UsageError(`unrecognized option '-${arg[j]}'`, true);
        if (!spec.arg) {
          spec.apply(options, '');
          continue;
        }
        let value: string | undefined = arg.slice(j + 1);
        if (value === '') value = argv[++i];
        if (value === undefined) throw new UsageError(`option requires an argument -- '${spec.short}'`, true);
        spec.apply(options, value);
        break;
      }
    } else {
      throw new UsageError(`unexpected argument '${arg}'`, true);
    }
  }
  return options;
}
