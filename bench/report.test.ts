import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import type { ProgramCost } from './bpf-stats';
import { EFFECT_SPECS } from './effects';
import { summariseWorkload, WORKLOADS, type OverheadCpuResult, type WorkloadRun } from './overhead-summary';
import { allRows, renderReport, type SuiteResults } from './report';

const MB = 1024 * 1024;

/** Ten blocks of runs: the daemon's cost per unit of work is `daemonCost` (0.002 = 0.2 %), with ±0.5 % noise around it. */
function overhead(daemonCost: number): OverheadCpuResult {
  const noise = [1, 1.004, 0.997, 1.002, 0.999, 1.005, 0.996, 1.001, 0.998, 1.003];
  const run = (work: number, cpu: number): WorkloadRun => ({ work, cpuNs: cpu, machineNs: cpu * 1.2, seconds: 2, retransmits: 0 });
  const none = noise.map((n) => run(1e9 * n, 1e9));
  const control = noise.map((n, i) => run(1e9 * noise[(i + 3) % 10] * n, 1e9 * n));
  const daemon = noise.map((n, i) => run(1e9 * noise[(i + 5) % 10] * (1 - daemonCost), 1e9 * n));
  return {
    seconds: 2,
    pairs: 10,
    settleSeconds: 12,
    workloads: WORKLOADS.map((w) => summariseWorkload(w, { none, control, daemon })),
    daemonCpuPercent: [0.2],
    tuners: ['netns', 'sysctl', 'tcp_buffer'],
    orders: [],
  };
}

function program(name: string, perSecond: number, avgNs: number): ProgramCost {
  return { id: 1, name, type: 'tracing', avgNs, perSecond, invocations: perSecond * 10, corePercent: (avgNs * perSecond) / 1e7, verifiedInsns: 100 };
}

function results(overrides: Partial<SuiteResults> = {}): SuiteResults {
  const daemon = { cpuPercent: 0.2, maxRss: 52 * MB, memory: { rss: 51 * MB, peakRss: 63 * MB, anon: 12 * MB, file: 39 * MB }, threads: [], events: 3 };
  return {
    kernel: '6.18.0-test',
    cpus: 2,
    cpuModel: 'Test CPU',
    date: '2026-11-25T00:00:00.000Z',
    quick: false,
    durationSeconds: 420,
    tuners: ['netns', 'sysctl', 'tcp_buffer'],
    start: { daemonMs: [130, 140, 135], internalMs: [60, 70, 65], nodeMs: [50, 55, 52], tuners: ['netns', 'sysctl'] },
    idle: {
      startSeconds: 90,
      seconds: 120,
      memory: { rss: 51 * MB, peakRss: 60 * MB, anon: 12 * MB, file: 39 * MB },
      cpuPercent: 0.01,
      baseRss: 39 * MB,
      baseCpuPercent: 0,
      threads: [{ comm: 'node', ns: 5e6 }],
      mappings: [{ mapping: 'node', bytes: 30 * MB }],
      tuners: ['netns', 'sysctl'],
      events: [],
    },
    overhead: overhead(0.001),
    hotPath: { seconds: 10, throughput: [10e9, 10e9], programs: [program('tcp_buffer_rcv', 60000, 35), program('sysctl_write', 3, 500)], daemon: [daemon] },
    reaction: {
      endToEndNs: Array.from({ length: 200 }, (_, i) => 500_000 + i * 1000),
      lowerBoundNs: Array.from({ length: 200 }, (_, i) => 400_000 + i * 1000),
      firstInNamespaceNs: [500_000],
      laterNs: Array.from({ length: 199 }, (_, i) => 501_000 + i * 1000),
      pollMs: 0.05,
      missed: 0,
      triggers: 200,
      excludedNamespaces: 0,
      excludedTriggers: 0,
      eventToHandlerUs: { p50: 150, p99: 400, samples: 200 },
      changeStepsUs: { read: { p50: 40, p99: 90, samples: 200 }, state: { p50: 450, p99: 3600, samples: 200 }, write: { p50: 60, p99: 120, samples: 200 } },
      writes: 200,
      sched: { waitNs: 50e6, slices: 1000 },
      loadAverage: 4.5,
      interference: [],
    },
    effects: [
      {
        spec: EFFECT_SPECS[0],
        status: 'ok',
        seconds: 60,
        result: {
          scenario: 'long-RTT buffer sizing',
          rows: [{ metric: 'throughput after 30 s', value: '400 Mbit/s', baseline: '100 Mbit/s', target: '>= 2x without', met: true }],
          notes: ['rmem grew from 6 MB to 25 MB'],
        },
      },
      { spec: EFFECT_SPECS[1], status: 'not built yet', seconds: 0 },
    ],
    errors: [],
    notes: ['machine shared'],
    plotFile: 'tcp_buffer.svg',
    ...overrides,
  };
}

function row(r: SuiteResults, metric: RegExp) {
  const found = allRows(r).find((x) => metric.test(x.metric));
  assert.ok(found, `no row matching ${metric}`);
  return found;
}

test('every figure with a target is met here, and the report says so', () => {
  const r = results();
  const rows = allRows(r);
  assert.ok(rows.filter((x) => x.target).every((x) => x.met !== false), JSON.stringify(rows.filter((x) => x.met === false)));
  const md = renderReport(r);
  assert.match(md, /kernel 6\.18\.0-test, 2 CPUs \(Test CPU\), 2026-11-25/);
  assert.match(md, /Every figure with a target met it\./);
  assert.doesNotMatch(md, /MISSED/);
  assert.match(md, /!\[[^\]]*\]\(tcp_buffer\.svg\)/);
  assert.match(md, /\| effect: tcp_conn \| lossy-path congestion control \| not built yet \|/);
  assert.match(md, /\| effect: tcp_buffer \| throughput after 30 s \| 400 Mbit\/s \| >= 2x without \| met \| without bpftune: 100 Mbit\/s \|/);
  assert.match(row(r, /bulk TCP over veth: throughput/).value, /^0\.99\d \[0\.99\d, 1\.00\d\]$/);
  assert.match(row(r, /stress-ng --sock 1: work per CPU-second/).context, /^control \(no daemon \/ no daemon\) 1\.0\d\d \[/);
  assert.match(md, /### Overhead: 10 blocks/);
  assert.match(md, /Per-call hooks during bulk traffic: tcp_buffer_rcv 60000\/s x 35 ns = 0\.210 % of a core/);
  assert.match(row(r, /RSS during bulk/).metric, /settled daemon/);
  assert.equal(row(r, /hottest hooks/).met, true);
});

test('misses are marked and explained from the breakdown', () => {
  const r = results();
  r.idle = {
    ...r.idle!,
    memory: { ...r.idle!.memory, rss: 75 * MB },
    cpuPercent: 0.2,
    threads: [{ comm: 'node', ns: 100e6 }, { comm: 'V8Worker', ns: 20e6 }],
    events: [{ tuner: 'netns', count: 50 }, { tuner: 'sysctl', count: 10 }],
  };
  r.hotPath = { ...r.hotPath!, programs: [program('tcp_buffer_rcv', 60000, 120)] };
  r.reaction = {
    ...r.reaction!,
    endToEndNs: Array.from({ length: 100 }, (_, i) => (i < 95 ? 1e6 : 9e6)),
    lowerBoundNs: Array.from({ length: 100 }, (_, i) => (i < 95 ? 0.9e6 : 3e6)),
    firstInNamespaceNs: [9e6, 9e6, 9e6, 9e6, 9e6],
    laterNs: Array.from({ length: 95 }, () => 1e6),
    eventToHandlerUs: { p50: 200, p99: 7000, samples: 100 },
  };
  r.overhead = overhead(0.05);
  r.hotPath.daemon = [{ ...r.hotPath.daemon[0], maxRss: 63 * MB, memory: { rss: 61 * MB, peakRss: 63.2 * MB, anon: 20 * MB, file: 41 * MB } }];
  const md = renderReport(r);
  for (const metric of [/idle RSS/, /idle CPU/, /hottest hooks/, /p99/, /request\/response over veth: throughput/, /RSS during bulk/]) assert.equal(row(r, metric).met, false, String(metric));
  assert.match(md, /\*\*RSS during bulk traffic 63\.0 MB\*\*.*at the daemon's lifetime peak \(63\.2 MB/);
  assert.match(md, /\*\*Idle RSS 75\.0 MB\*\*: a bare Node\.js process .* 39\.0 MB, so the daemon's own share is 36\.0 MB/);
  assert.match(md, /\*\*Idle CPU 0\.200 %\*\* .* node 100\.0 ms \(83 %\), V8Worker 20\.0 ms \(17 %\)/);
  assert.match(md, /\*\*Hot-path run time above 50 ns\*\* in: tcp_buffer_rcv \(tracing, 120 ns as measured x 60000\/s/);
  assert.match(md, /\*\*Reaction p99 9\.00 ms\*\* end to end; .* p99 7\.00 ms/);
  assert.match(md, /p50\/p99: read 40 us\/90 us, state file 450 us\/3600 us, write 60 us\/120 us \(its last 200 changes\)/);
  assert.match(md, /state file step p50 450 us, p99 3600 us/);
  assert.match(md, /not yet visible at p99 3\.00 ms \(its last unchanged read\), and was by 9\.00 ms/);
  assert.match(md, /first trigger in each namespace \(5 of 100, 5 % .*median 9\.00 ms against 1\.00 ms for later ones \(p99 1\.00 ms\)/);
  assert.match(md, /waited 50\.00 ms in all on the run queue over 1000 wake-ups \(50 us on average\), with a load average of 4\.50 on 2 CPUs/);
  assert.match(md, /handled 60 events in the window \(netns 50, sysctl 10\).*\(2\.00 ms of CPU per event/);
  assert.match(md, /\*\*iperf3 bulk TCP over veth\*\*: work per CPU-second .*, throughput 0\.95\d \[0\.9\d\d, 0\.9\d\d\] \(costs measurably\)/);
  assert.match(md, /= 0\.720 % of a core, against 50 % of a core used by the bulk workload: at most 1\.44 % of its CPU/);
  // Both overhead ratios of all three workloads, plus the five others.
  assert.equal((md.match(/\*\*MISSED\*\*/g) ?? []).length, 11);
});

test('where an empty program ran on the same tracepoint, the hot-path figure is judged above it', () => {
  const r = results();
  r.hotPath = { ...r.hotPath!, programs: [program('tcp_buffer_rcv', 60000, 120)], floorNs: { tcp_buffer_rcv: 85 } };
  const hot = row(r, /hottest hooks/);
  assert.equal(hot.met, true);
  assert.match(hot.value, /^35(\.0)? ns above the empty program \(tcp_buffer_rcv, the slowest of 1\)$/);
  assert.match(hot.context, /tcp_buffer_rcv 120 ns as measured, an empty program on its tracepoint 85(\.0)? ns at 60000\/s/);
  r.hotPath.floorNs = { tcp_buffer_rcv: 40 };
  assert.equal(row(r, /hottest hooks/).met, false);
  assert.match(renderReport(r), /in: tcp_buffer_rcv \(tracing, 80(\.0)? ns above an empty program, 120 ns as measured x 60000\/s/);
});

test('no hot hook: the per-run target is not applicable, not met by default', () => {
  const r = results({ hotPath: { seconds: 10, throughput: [1e9], programs: [program('sysctl_write', 4, 498)], daemon: [] } });
  const hot = row(r, /hottest hooks/);
  assert.equal(hot.met, undefined);
  assert.match(hot.context, /busiest ran 4\/s \(sysctl_write, 498 ns\)/);
  assert.match(renderReport(r), /\| n\/a \|/);
});

test('failed sections and quick mode are stated', () => {
  const r = results({ quick: true, overhead: undefined, errors: [{ section: 'overhead', error: 'iperf3 client failed (1): connection refused' }] });
  const md = renderReport(r);
  assert.match(md, /\*\*quick\*\*/);
  assert.match(md, /## Sections that failed\n\n- \*\*overhead\*\*: iperf3 client failed/);
  assert.doesNotMatch(md, /daemon \/ no daemon/);
});

test('the direct cost is judged against the overhead target, and named where the end-to-end ratios miss', () => {
  const r = results({ overhead: overhead(0.02) });
  const cost = (workload: (typeof WORKLOADS)[number], ratio: number, low: number) => ({
    workload,
    runs: 10,
    bpfNs: [1],
    daemonNs: [0.1],
    workloadNs: [500],
    asMeasured: { ratio: ratio - 0.004, low: low - 0.004, high: ratio - 0.002, confidence: 0.95, pairs: [] },
    floorNs: [70],
    aboveFloor: { ratio, low, high: ratio + 0.001, confidence: 0.95, pairs: [] },
  });
  r.directCost = {
    settings: { blocks: 10, seconds: 2, warmupSeconds: 10, primeRounds: 1, primeSeconds: 1 },
    workloads: [cost('bulk', 0.998, 0.997), cost('sock', 0.993, 0.991), cost('rr', 0.996, 0.985)],
    table: ['## Direct cost per unit of work (phase "cost")', '', '| workload |'],
  };
  const rows = allRows(r).filter((x) => /direct cost/.test(x.metric));
  assert.deepEqual(
    rows.map((x) => [x.value, x.met]),
    [
      ['0.9980 [0.9970, 0.9990]', true],
      ['0.9930 [0.9910, 0.9940]', false],
      ['0.9960 [0.9850, 0.9970]', false],
    ],
  );
  assert.match(rows[0].context, /as measured \(statistics on\) 0\.9940 \[0\.9930, 0\.9960\]/);
  const report = renderReport(r);
  // The end-to-end ratios (2 % cost) miss; their explanation gives the direct cost of the same workload.
  assert.match(report, /\*\*iperf3 bulk TCP over veth\*\*: work per CPU-second [^\n]*direct cost on the same workload [^\n]* is 0\.9980 \[0\.9970, 0\.9990\]/);
  assert.match(report, /### Direct cost per unit of work \(phase "cost"\)/);
});
