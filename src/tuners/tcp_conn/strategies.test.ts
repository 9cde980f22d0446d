/**
 * tcp_conn's strategies end to end: the daemon with 15 s strategy timeouts
 * (BPFTUNE_STRATEGY_TIMEOUT_MS), real iperf3 transfers over a lossy emulated
 * path (5% loss each way, 10 ms RTT, 100 Mbit/s; both namespaces default to
 * reno), the real sockops program, `-q jstatus`/`-q status` and the log.
 *
 * Every transfer is also measured by the test itself (iperf3's received
 * throughput, `ss -ti` for the algorithm its socket ran) and put down to the
 * strategy that ran before and after it, so that the daemon's scores can be
 * checked against measurements it did not make. On this path reno alone
 * collapses (a few Mbit/s) where bbr does not, so the baseline must lose.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { cleanupNamespaces, removeStaleNamespaces, setSysctlIn } from '../../../test/support/netns';
import { DaemonProcess, TIME_SCALE, stopAllDaemons } from '../../../test/support/daemon';
import { createEmulatedLink, type EmulatedLink } from '../../../test/support/link-emulator';
import { TestCgroup } from '../../../test/support/cgroup';
import { measuredTransfer } from './test-traffic';

const TIMEOUT_MS = 15_000;
const STRATEGIES = ['learned-per-host', 'bbr-on-loss', 'kernel-default'];

let link: EmulatedLink | undefined;
let cgroup: TestCgroup | undefined;

before(removeStaleNamespaces);
after(async () => {
  await stopAllDaemons();
  await link?.close();
  cgroup?.remove();
  cleanupNamespaces();
});

interface StrategyJson {
  name: string;
  runs: number;
  score: number | null;
  samples: number;
  basis: string | null;
  error: string | null;
}

interface StrategyStateJson {
  current: string;
  evaluations: number;
  switches: number;
  lastDecision: string | null;
  strategies: StrategyJson[];
}

function strategyState(daemon: DaemonProcess): StrategyStateJson {
  const reply = daemon.query('jstatus');
  assert.equal(reply.code, 0, reply.stderr);
  const status = JSON.parse(reply.stdout) as { tuners: Array<{ name: string; strategy?: StrategyStateJson }> };
  const state = status.tuners.find((t) => t.name === 'tcp_conn')?.strategy;
  assert.ok(state, `jstatus shows tcp_conn's strategies: ${reply.stdout}`);
  return state;
}

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;

test('strategies take turns on a lossy path; each is scored from its measured connections and the best scoring one runs next', async () => {
  cgroup = new TestCgroup();
  link = await createEmulatedLink({ rttMs: 10, lossPercent: 5, rateMbit: 100, seed: 4343 });
  for (const ns of [link.client, link.server]) setSysctlIn(ns, 'net.ipv4.tcp_congestion_control', 'reno');
  const daemon = new DaemonProcess(['-d', '-a', 'tcp_conn', '-c', cgroup.mountPoint], {
    env: { BPFTUNE_STRATEGY_TIMEOUT_MS: String(TIMEOUT_MS * TIME_SCALE) },
  });
  await daemon.started();
  assert.match(daemon.log, /tuner 'tcp_conn': strategy 'learned-per-host' runs first, evaluated after \d+ s \(of 'learned-per-host', 'bbr-on-loss', 'kernel-default'\)/);

  // Transfers the test measured itself, by the strategy that ran from before each began to after it ended.
  const measured = new Map<string, Array<{ mbit: number; algorithms: Set<string> }>>(STRATEGIES.map((s) => [s, []]));
  const deadline = Date.now() + 6 * TIMEOUT_MS * TIME_SCALE;
  let state = strategyState(daemon);
  // Until one evaluation had a score for every strategy: that one chose by score alone.
  while (!state.strategies.every((s) => s.score !== null)) {
    assert.ok(Date.now() < deadline, `every strategy measured within ${6 * TIMEOUT_MS} ms: ${JSON.stringify(state)}\n${daemon.log}`);
    const { current, switches } = state;
    const result = await measuredTransfer(cgroup, link, 2);
    state = strategyState(daemon);
    if (state.switches === switches) measured.get(current)?.push({ mbit: result.receivedBitsPerSecond / 1e6, algorithms: result.algorithms });
  }

  // (a) every strategy ran, and was measured while it did.
  for (const s of state.strategies) {
    assert.ok(s.runs >= 1, `'${s.name}' ran: ${JSON.stringify(state)}`);
    assert.ok(s.samples >= 3 && s.score !== null, `'${s.name}' was scored from at least 3 connections: ${JSON.stringify(s)}`);
    assert.match(s.basis ?? '', /^mean delivery rate [\d.]+ Mbit\/s, to 1 remote host$/);
  }
  // The BPF side really acted by the strategy: the baseline left every connection on reno, the loss rule switched them.
  const seen = JSON.stringify(Object.fromEntries([...measured].map(([name, list]) => [name, list.map((m) => [Math.round(m.mbit), [...m.algorithms]])])));
  const strategyLines = daemon.log.split('\n').filter((l) => /strategy/.test(l)).join('\n');
  const baselineAlgorithms = new Set(measured.get('kernel-default')?.flatMap((m) => [...m.algorithms]));
  assert.deepEqual([...baselineAlgorithms], ['reno'], `under kernel-default no connection was switched: ${seen}\n${strategyLines}`);
  const lossRule = measured.get('bbr-on-loss') ?? [];
  assert.ok(lossRule.some((m) => m.algorithms.has('bbr')), 'under bbr-on-loss lossy connections were switched to bbr');

  // (c) the evaluation that had every score chose the best of them.
  const best = state.strategies.reduce((a, b) => ((b.score ?? -1) > (a.score ?? -1) ? b : a));
  assert.equal(state.current, best.name, `the best scoring strategy runs: ${JSON.stringify(state)}`);
  assert.equal(state.switches, 3, `two switches to the untried, one to the best: ${JSON.stringify(state)}`);
  assert.notEqual(best.name, 'kernel-default', `reno alone does not win on a lossy path: ${JSON.stringify(state)}`);
  const baseline = state.strategies.find((s) => s.name === 'kernel-default') as StrategyJson;
  assert.ok((best.score ?? 0) > (baseline.score ?? 0) + 0.05, `the winner beats the baseline beyond the margin: ${JSON.stringify(state)}`);

  // (b) the scores agree with what the test measured on its own: the winner's transfers were faster than the baseline's.
  const winnerMbit = mean((measured.get(best.name) ?? []).map((m) => m.mbit));
  const baselineMbit = mean((measured.get('kernel-default') ?? []).map((m) => m.mbit));
  assert.ok(winnerMbit > baselineMbit, `iperf3: '${best.name}' ${winnerMbit.toFixed(1)} Mbit/s against kernel-default ${baselineMbit.toFixed(1)} Mbit/s`);

  // The log says what switched and why, in the order the rules give. The queries above ran
  // synchronously, so the daemon's last lines may not have been read from its pipe yet.
  await daemon.waitFor(/^Due to .* switch strategy from 'kernel-default' -> /m);
  const switches = [...daemon.log.matchAll(/^Due to (.*) switch strategy from '([a-z-]+)' -> '([a-z-]+)'$/gm)].map((m) => [m[2], m[3], m[1]]);
  assert.deepEqual(
    switches.slice(0, 2).map(([from, to, why]) => [from, to, why]),
    [
      ['learned-per-host', 'bbr-on-loss', "'bbr-on-loss' not measured yet"],
      ['bbr-on-loss', 'kernel-default', "'kernel-default' not measured yet"],
    ],
  );
  const [from, to, why] = switches[2] ?? [];
  assert.equal(`${from} -> ${to}`, `kernel-default -> ${best.name}`, daemon.log);
  assert.match(why, new RegExp(`^'${best.name}' scoring ${(best.score ?? 0).toFixed(3)} \\(\\d+ samples, mean delivery rate [\\d.]+ Mbit/s, to 1 remote host\\) against 'kernel-default' ${(baseline.score ?? 0).toFixed(3)} `));
  assert.equal(daemon.log.match(/^Scenario 'strategy switched' occurred for tuner 'tcp_conn'\. /gm)?.length, 3);

  // -q status shows the running strategy and every score.
  const text = daemon.query('status').stdout;
  assert.match(text, new RegExp(`^  strategy '${best.name}' running \\d+ s, next evaluation in \\d+ s \\(\\d+ evaluations, 3 switches\\)$`, 'm'));
  for (const s of state.strategies) {
    const mark = s.name === best.name ? '\\*' : ' ';
    assert.match(text, new RegExp(`^  ${mark} ${s.name}\\s+score ${(s.score ?? 0).toFixed(3)} from ${s.samples} samples \\(mean delivery rate`, 'm'), text);
  }
  assert.equal(await daemon.stop(), 0);
  process.stderr.write(`${strategyLines}\n${text}transfers (Mbit/s, algorithms) by strategy: ${seen}\n`);
  process.stderr.write(
    `strategies: ${state.strategies.map((s) => `${s.name} score ${s.score?.toFixed(3)} (${s.samples} connections; iperf3 ${mean((measured.get(s.name) ?? []).map((m) => m.mbit)).toFixed(1)} Mbit/s over ${measured.get(s.name)?.length} transfers)`).join(', ')}; running: ${state.current}\n`,
  );
});
