/**
 * `make bench`: every benchmark in one run, with one report. Overhead and
 * hot-path cost under bulk traffic, footprint (start, idle, bulk), reaction
 * time, and each tuner's effect scenario, all measured against a baseline in
 * the same run, since this machine is shared and noisy. Writes
 * bench/results/report.md and bench/results/tcp_buffer.svg, and prints the
 * report. About 25 minutes (limit: BUDGET_MS); cleans up after itself, also
 * on failure and Ctrl-C.
 *
 * Usage (root): node dist/bench/suite.js [--quick] [--only SECTION,...]
 *   sections: start, idle, overhead, cost, hotpath, reaction, harm, effects; a run of
 *   some sections writes report-only-<sections>.md (e.g. report-only-idle.md)
 *   beside report.md, which stays the full run's.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT } from '../test/support/daemon';
import { removeStaleNamespaces } from '../test/support/netns';
import { cleanupAll, installSignalHandlers, wasAborted } from './cleanup';
import { QUIET_TEXTFILE_INTERVAL_MS } from '../src/metrics/exposition';
import { builtinDaemonArgs, daemonProblems, IDLE_STEADY_START_S, idleFootprint, reaction, startTimes, withSampleDaemonArgs } from './core';
import { EFFECT_SPECS, runEffect, type EffectOutcome } from './effects';
import { createVethPair, type VethPair } from './iperf';
import { measureHarm, harmSettings } from './harm';
import { measureHotPath, type HotPathOptions } from './hot-path';
import { DAEMON_SETTLE_SECONDS, measureOverheadCpu } from './overhead-cpu';
import { WORKLOADS } from './overhead-summary';
import { directCost, freshDaemon, measureCost, reportCost, type CostSettings } from './vs-upstream-cost';
import { renderEffectPlot } from './plot';
import { renderReport, TARGETS, type SuiteResults } from './report';
import { profileIdleDaemon } from './cpu-profile';

const SECTIONS = ['start', 'idle', 'overhead', 'cost', 'hotpath', 'reaction', 'harm', 'effects'] as const;
type Section = (typeof SECTIONS)[number];

/**
 * The whole run's limit; the effect scenarios (last) get what is left of it. A full run takes about
 * 32 minutes: the idle steady state needs 90 s plus one whole 5-minute textfile period, the
 * effect scenarios about 8 minutes, the direct cost about 6, the harm matrix and the overhead
 * blocks most of the rest.
 */
const BUDGET_MS = 38 * 60_000;
const EFFECT_MAX_MS = 5 * 60_000;

interface SuiteOptions {
  quick: boolean;
  sections: Set<Section>;
}

function parseArgs(argv: string[]): SuiteOptions {
  const options: SuiteOptions = { quick: false, sections: new Set(SECTIONS) };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--quick') options.quick = true;
    else if (arg === '--only') {
      const wanted = (argv[++i] ?? '').split(',').filter(Boolean);
      const unknown = wanted.filter((s) => !(SECTIONS as readonly string[]).includes(s));
      if (unknown.length || !wanted.length) throw new Error(`--only takes a comma-separated list of: ${SECTIONS.join(', ')} (got '${wanted.join(',')}')`);
      options.sections = new Set(wanted as Section[]);
    } else if (arg === '-h' || arg === '--help') {
      process.stdout.write(`usage: node dist/bench/suite.js [--quick] [--only ${SECTIONS.join(',')}]\n`);
      process.exit(0);
    } else throw new Error(`unknown argument '${arg}' (try --help)`);
  }
  return options;
}

function progress(line: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

function preflight(): void {
  if (process.getuid?.() !== 0) throw new Error('the benchmark loads BPF programs and creates namespaces: run it as root');
  for (const [tool, args] of [['iperf3', ['--version']], ['bpftool', ['version']], ['ip', ['-V']], ['stress-ng', ['--version']]] as const) {
    try {
      execFileSync(tool, [...args], { stdio: 'ignore' });
    } catch {
      throw new Error(`${tool} is missing: run 'make deps bench-deps' (as root) to install the Debian packages the benchmark needs`);
    }
  }
}

/** Other engineers' daemons and iperf3 runs on this machine: their load is noise in ours, and the report says so. */
function foreignActivity(): { daemons: number; iperf: number } {
  let daemons = 0;
  let iperf = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let cmd: string;
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    } catch {
      continue;
    }
    if (!/bin\/bpftune -s|^iperf3 /.test(cmd)) continue;
    try {
      // Ours are our children (iperf3 is exec'd by `ip netns exec` in place).
      const ppid = Number(/\) \S+ (\d+)/.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1]);
      if (ppid === process.pid) continue;
    } catch {
      continue;
    }
    if (cmd.startsWith('iperf3 ')) iperf++;
    else daemons++;
  }
  return { daemons, iperf };
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  preflight();
  installSignalHandlers();
  removeStaleNamespaces();
  const startedAt = Date.now();
  const deadline = startedAt + BUDGET_MS;
  const q = options.quick;
  const cpus = os.cpus();
  const results: SuiteResults = {
    kernel: os.release(),
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    date: new Date().toISOString(),
    quick: q,
    durationSeconds: 0,
    tuners: [],
    effects: [],
    errors: [],
    notes: [],
  };
  const foreign = { daemons: 0, iperf: 0 };
  const sampleForeign = () => {
    const f = foreignActivity();
    foreign.daemons = Math.max(foreign.daemons, f.daemons);
    foreign.iperf = Math.max(foreign.iperf, f.iperf);
  };
  const loadBefore = os.loadavg()[0];

  const sectionSeconds: string[] = [];
  const run = async (section: Section, label: string, body: () => Promise<void>) => {
    if (!options.sections.has(section) || wasAborted()) return;
    sampleForeign();
    progress(`${label}...`);
    const sectionStart = Date.now();
    try {
      await body();
    } catch (err) {
      if (wasAborted()) throw err;
      const message = err instanceof Error ? err.message : String(err);
      progress(`${label} failed: ${message}`);
      results.errors.push({ section: label, error: message.split('\n')[0] });
    } finally {
      sectionSeconds.push(`${section} ${((Date.now() - sectionStart) / 1000).toFixed(0)} s`);
    }
    sampleForeign();
  };

  await run('start', 'start time', async () => {
    results.start = await startTimes(q ? 3 : 5, builtinDaemonArgs());
    results.tuners = results.start.tuners;
  });
  await run('idle', 'idle footprint', async () => {
    // Steady state (timers slowed) from 90 s after start, after a warm-up window from 10 s to 70 s. The
    // window holds whole periods of the slowest timer: 30 s without metrics, the textfile's 5 min with.
    const idleWindows = (args: string[], steadySeconds: number) =>
      q ? idleFootprint(30, args, 3, 10, 40) : idleFootprint(steadySeconds, args, 10, 60, IDLE_STEADY_START_S);
    // Both daemons at once: one after the other they would take 10 minutes. Each figure is
    // its own daemon's threads, against its own bare Node.js process; an idle daemon takes a few
    // hundredths of a percent of one of the two cores, so neither waits for the other.
    const textfileDir = mkdtempSync(path.join(os.tmpdir(), 'bpftune-bench-textfile-'));
    try {
      // allSettled: a failed one must not let the next section start beside the other's daemon.
      const [off, on] = await Promise.allSettled([
        idleWindows(builtinDaemonArgs(), 120),
        idleWindows([...builtinDaemonArgs(), '--metrics', '127.0.0.1:0', '--metrics-textfile', textfileDir], QUIET_TEXTFILE_INTERVAL_MS / 1000),
      ]);
      if (off.status === 'rejected') throw off.reason;
      if (on.status === 'rejected') throw new Error(`idle with metrics on: ${on.reason instanceof Error ? on.reason.message : String(on.reason)}`);
      results.idle = off.value;
      results.idleMetrics = on.value;
    } finally {
      rmSync(textfileDir, { recursive: true, force: true });
    }
    results.tuners = results.idle.tuners;
    // Last, so that a profile that fails costs no measured figure.
    if (results.idle.cpuPercent > TARGETS.idleCpuPercent) {
      progress('idle CPU above target: profiling a separate idle run to say where it goes...');
      results.idleProfile = await profileIdleDaemon(q ? 5 : 20, q ? 3 : 10, builtinDaemonArgs());
    }
  });

  const hotPath: HotPathOptions = { seconds: q ? 3 : 10, runs: q ? 1 : 2, settleSeconds: q ? 3 : 10, daemonArgs: builtinDaemonArgs(), keepSampledHooksAttached: true, progress };
  let pair: VethPair | undefined;
  try {
    if (options.sections.has('overhead') || options.sections.has('hotpath')) pair = createVethPair();
    await run('overhead', 'overhead (CPU per unit of work: bulk, stress-ng --sock, request/response; daemon vs none vs none)', async () => {
      results.overhead = await measureOverheadCpu({ pairs: q ? 3 : 10, seconds: q ? 1 : 2, settleSeconds: q ? 1 : DAEMON_SETTLE_SECONDS, daemonArgs: builtinDaemonArgs(), progress }, pair);
      results.tuners = results.overhead.tuners;
    });
    await run('cost', "direct cost per unit of work (the daemon's CPU and BPF run time against the workloads' CPU)", async () => {
      // Ten blocks as the overhead section has pairs; shorter warm-up and priming than the VM's, where each event costs far more.
      const settings: CostSettings = { blocks: q ? 2 : 10, seconds: 2, warmupSeconds: q ? 5 : 10, primeRounds: 1, primeSeconds: 1 };
      const measured = await measureCost(freshDaemon, ['ours'], settings);
      results.directCost = { settings, workloads: WORKLOADS.flatMap((w) => directCost(measured, 'ours', w) ?? []), table: reportCost(measured) };
    });
    await run('hotpath', 'hot-path cost (BPF run-time statistics)', async () => {
      results.hotPath = await measureHotPath(hotPath, pair);
    });
  } finally {
    pair?.close();
  }

  await run('reaction', 'reaction time (sample tuner listen_backlog)', async () => {
    results.reaction = await reaction(q ? 4 : 10, 20, withSampleDaemonArgs());
  });

  await run('harm', 'harm matrix (no daemon, bpftune, tuned profile, control)', async () => {
    results.harm = await measureHarm({ ...harmSettings(q), quick: q, daemonArgs: builtinDaemonArgs(), progress });
  });

  await run('effects', 'effect scenarios', async () => {
    for (const spec of EFFECT_SPECS) {
      if (wasAborted()) break;
      const left = deadline - Date.now() - 20_000;
      if (left < 30_000) {
        results.effects.push({ spec, status: 'timed out', seconds: 0, error: `not run: the suite's ${BUDGET_MS / 60_000}-minute limit was used up by earlier sections` });
        continue;
      }
      progress(`effect: ${spec.tuner} (${spec.scenario})`);
      const outcome: EffectOutcome = await runEffect(spec, Math.min(q ? 180_000 : EFFECT_MAX_MS, left), q, progress);
      progress(`effect: ${spec.tuner}: ${outcome.status} after ${outcome.seconds.toFixed(0)} s`);
      results.effects.push(outcome);
    }
  });
  if (wasAborted()) return;

  const resultsDir = path.join(REPO_ROOT, 'bench', 'results', ...(q ? ['quick'] : []));
  mkdirSync(resultsDir, { recursive: true });
  const plotted = results.effects.find((o) => o.spec.plotted);
  const plotSpec = EFFECT_SPECS.find((s) => s.plotted);
  // A run of some sections only (--only) leaves the full run's plot and report alone.
  const partial = options.sections.size < SECTIONS.length;
  const reportFile = partial ? `report-only-${SECTIONS.filter((x) => options.sections.has(x)).join('-')}.md` : 'report.md';
  if (plotSpec && options.sections.has('effects')) {
    const why = !plotted ? 'effect scenarios not run' : plotted.status === 'ok' ? 'the scenario returned no series' : `${plotSpec.tuner} effect benchmark: ${plotted.status}`;
    writeFileSync(path.join(resultsDir, `${plotSpec.tuner}.svg`), renderEffectPlot(plotted?.result, why));
    results.plotFile = `${plotSpec.tuner}.svg`;
  }

  results.durationSeconds = (Date.now() - startedAt) / 1000;
  results.notes.push(
    `Time per section: ${sectionSeconds.join(', ')}.`,
    `Load average at start ${loadBefore.toFixed(2)}, at end ${os.loadavg()[0].toFixed(2)}. ` +
      (foreign.daemons || foreign.iperf
        ? `Other engineers' tests ran on this machine during the run (up to ${foreign.daemons} other bpftune daemons and ${foreign.iperf} iperf3 processes seen at once): every figure is noisy, and the ratios (measured interleaved, same run) are more trustworthy than the absolute numbers.`
        : 'No other bpftune daemon or iperf3 was seen at section boundaries.'),
    'Overhead runs have BPF run-time statistics off (their clock reads would count against the daemon); the hot-path figures come from separate daemon bulk runs with them on, through a BPF_ENABLE_STATS descriptor held for those runs only (kernel.bpf_stats_enabled is not touched, so tests that save and restore it are not confused).',
    'Every daemon runs with -R (rollback on exit) and loads every built-in tuner (an empty plugin directory keeps /usr/local/lib64/bpftune out); the reaction section adds the sample plugin listen_backlog.',
    'Reaction is measured end to end from outside: a process in a fresh namespace calls listen() with a backlog above somaxconn and polls /proc/sys/net/core/somaxconn until the daemon has written it (CLOCK_MONOTONIC on both sides).',
  );
  const problems = daemonProblems();
  if (problems.length) {
    results.notes.push(
      `Some daemon runs logged failures (figures from those runs had fewer programs attached): ${problems.slice(0, 5).map((p) => `\`${p.slice(0, 240)}\``).join('; ')}${problems.length > 5 ? `; and ${problems.length - 5} more` : ''}.`,
    );
  }
  const report = renderReport(results);
  writeFileSync(path.join(resultsDir, reportFile), report);
  process.stdout.write(report);
  progress(`report written to ${path.relative(process.cwd(), path.join(resultsDir, reportFile))}`);
}

main()
  .catch((err: unknown) => {
    if (wasAborted()) return;
    process.stderr.write(`benchmark failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(async () => {
    if (!wasAborted()) await cleanupAll();
  });
