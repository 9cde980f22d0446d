import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { mergeCosts, parseProgFdinfo, type ProgramCost } from './bpf-stats';
import { summariseProfile, type CpuProfile } from './cpu-profile';
import { REPO_ROOT } from '../test/support/daemon';
import { smapsBreakdown, threadCpuDelta } from './proc';
import { median, percentile, quantile } from './stats';

test('median, quantiles and nearest-rank percentiles', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(quantile([1, 2, 3, 4, 5], 0.25), 2);
  assert.equal(quantile([10, 20], 0.75), 17.5);
  assert.ok(Number.isNaN(median([])));
  const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(percentile(hundred, 99), 99);
  assert.equal(percentile(hundred, 50), 50);
  assert.equal(percentile([5], 99), 5);
  assert.equal(median([1, NaN, 3]), 2);
});

test('parseProgFdinfo reads program fds and skips links', () => {
  const prog = 'pos:\t0\nflags:\t02000002\nprog_type:\t5\nprog_jited:\t1\nprog_tag:\tabc\nmemlock:\t4096\nprog_id:\t274\nrun_time_ns:\t1500\nrun_cnt:\t30\nrecursion_misses:\t0\nverified_insns:\t18\n';
  assert.deepEqual(parseProgFdinfo(prog), { id: 274, runTimeNs: 1500, runCnt: 30, verifiedInsns: 18 });
  const link = 'pos:\t0\nlink_type:\traw_tracepoint\nlink_id:\t148\nprog_tag:\tabc\nprog_id:\t272\ntp_name:\ttask_newtask\n';
  assert.equal(parseProgFdinfo(link), undefined);
  assert.equal(parseProgFdinfo('pos:\t0\nmap_type:\t27\nmap_id:\t3\n'), undefined);
});

test('mergeCosts sums runs of the same program by name (ids differ per daemon)', () => {
  const cost = (id: number, name: string, invocations: number, avgNs: number, seconds: number): ProgramCost => ({
    id, name, type: 'tracepoint', avgNs, invocations, perSecond: invocations / seconds, corePercent: ((avgNs * invocations) / (seconds * 1e9)) * 100, verifiedInsns: 10,
  });
  const merged = mergeCosts([[cost(1, 'a', 1000, 40, 10), cost(2, 'b', 0, NaN, 10)], [cost(7, 'a', 3000, 20, 10), cost(8, 'b', 10, 100, 10)]], [10, 10]);
  const a = merged.find((m) => m.name === 'a');
  assert.ok(a);
  assert.equal(a.invocations, 4000);
  assert.equal(a.avgNs, (1000 * 40 + 3000 * 20) / 4000);
  assert.equal(a.perSecond, 200);
  assert.equal(merged[0].name, 'a', 'busiest first');
  const b = merged.find((m) => m.name === 'b');
  assert.equal(b?.avgNs, 100);
});

test('smapsBreakdown groups resident memory by mapping', () => {
  const smaps = [
    '00400000-00500000 r-xp 00000000 08:01 123 /usr/bin/node',
    'Size:               1024 kB',
    'Rss:                 800 kB',
    '00600000-00700000 rw-p 00000000 00:00 0 ',
    'Rss:                 300 kB',
    '00700000-00800000 rw-p 00000000 00:00 0 ',
    'Rss:                 200 kB',
    '7f000000-7f100000 r-xp 00000000 08:01 456 /work/build/Release/bpftune_native.node',
    'Rss:                  40 kB',
    '7ffc0000-7ffd0000 rw-p 00000000 00:00 0                          [stack]',
    'Rss:                  64 kB',
    '7ffd0000-7ffe0000 rw-p 00000000 00:00 0                          [anon:v8]',
    'Rss:                  8 kB',
  ].join('\n');
  assert.deepEqual(smapsBreakdown(smaps), [
    { mapping: 'node', bytes: 800 * 1024 },
    { mapping: '[anon]', bytes: 508 * 1024 },
    { mapping: '[stack]', bytes: 64 * 1024 },
    { mapping: 'bpftune_native.node', bytes: 40 * 1024 },
  ]);
});

test('threadCpuDelta sums threads of one name and ignores threads gone since', () => {
  const before = [{ tid: 1, comm: 'node', ns: 100 }, { tid: 2, comm: 'V8Worker', ns: 50 }, { tid: 3, comm: 'V8Worker', ns: 10 }];
  const after = [{ tid: 1, comm: 'node', ns: 400 }, { tid: 2, comm: 'V8Worker', ns: 60 }, { tid: 3, comm: 'V8Worker', ns: 30 }, { tid: 4, comm: 'libuv-worker', ns: 5 }];
  assert.deepEqual(threadCpuDelta(before, after), [
    { comm: 'node', ns: 300 },
    { comm: 'V8Worker', ns: 30 },
    { comm: 'libuv-worker', ns: 5 },
  ]);
});

test('summariseProfile: self time per function and file inside the window, idle left out', () => {
  const frame = (functionName: string, url = '', lineNumber = 0) => ({ functionName, url, lineNumber });
  const profile: CpuProfile = {
    nodes: [
      { id: 1, callFrame: frame('(root)') },
      { id: 2, callFrame: frame('(idle)') },
      { id: 3, callFrame: frame('rescan', `file://${REPO_ROOT}/dist/src/core/netns.js`, 41) },
      { id: 4, callFrame: frame('(garbage collector)') },
    ],
    startTime: 1000,
    // Samples at t = 1000, 1100, 1200, 1300, 1400, 1500; each lasts until the next.
    samples: [3, 2, 3, 4, 3, 2],
    timeDeltas: [0, 100, 100, 100, 100, 100],
  };
  const s = summariseProfile(profile, 1050, 1450);
  // In the window: t=1100 idle, 1200 rescan (100), 1300 GC (100), 1400 rescan (100).
  assert.equal(s.busyUs, 300);
  assert.equal(s.windowUs, 400);
  assert.deepEqual(s.byFunction[0], { name: 'rescan dist/src/core/netns.js:42', us: 200 });
  assert.deepEqual(s.byFunction[1], { name: '(garbage collector)', us: 100 });
  assert.deepEqual(s.byFile.map((f) => f.file), ['dist/src/core/netns.js', '(native or VM)']);
});
