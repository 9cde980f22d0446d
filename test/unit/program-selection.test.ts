import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { applyConditions, disabledProgramsSetting, kernelFacts, leaveOut, selectPrograms } from '../../src/core/program-selection';
import { ipv6FexitNeeded, memoryKfreeNeeded } from '../../src/tuners/udp_buffer/index';
import type { AttachKind } from '../../src/core/attach-kinds';
import type { ProgramInfo } from '../../src/core/native';

const programs: ProgramInfo[] = [
  { name: 'rcv_tp', section: 'tp_btf/tcp_rcv_space_adjust', type: 26, autoload: true },
  { name: 'rcv_fentry', section: 'fentry/tcp_rcv_space_adjust', type: 26, autoload: true },
  { name: 'rcv_kprobe', section: 'kprobe/tcp_rcv_space_adjust', type: 2, autoload: true },
  { name: 'ops', section: 'sockops', type: 13, autoload: true },
];
const alternatives = [{ hook: 'rcv', variants: ['rcv_tp', 'rcv_fentry', 'rcv_kprobe'] }];
const kinds = (...k: AttachKind[]) => () => new Set<AttachKind>(k);

test('the first supported variant of a hook is loaded, the rest are not', () => {
  const { selected, disabled } = selectPrograms(programs, alternatives, kinds('tp_btf', 'kprobe', 'cgroup'), false);
  assert.deepEqual(selected.map((s) => s.name), ['rcv_tp', 'ops']);
  assert.deepEqual(disabled.sort(), ['rcv_fentry', 'rcv_kprobe']);
});

test('without the tracepoint, fentry is refused here, so kprobe is used', () => {
  const { selected } = selectPrograms(programs, alternatives, kinds('kprobe', 'cgroup'), false);
  assert.deepEqual(selected.map((s) => `${s.name}:${s.kind}`), ['rcv_kprobe:kprobe', 'ops:cgroup']);
});

test('legacy mode prefers variants that need no BTF', () => {
  const { selected } = selectPrograms(programs, alternatives, kinds('tp_btf', 'fentry', 'kprobe', 'cgroup'), true);
  assert.deepEqual(selected.map((s) => s.name), ['rcv_kprobe', 'ops']);
});

test('a hook with no usable variant is an error naming the hook', () => {
  assert.throws(() => selectPrograms(programs, alternatives, kinds('cgroup'), false), /no variant of hook 'rcv'/);
  assert.throws(() => selectPrograms(programs, [{ hook: 'x', variants: ['nope'] }], kinds('cgroup'), false), /'nope'.*not a program/);
});

test('a variant whose target this kernel lacks is passed over for the next one', () => {
  const noTracepoint = (section: string) => (section.startsWith('tp_btf/') ? false : undefined);
  const { selected, disabled } = selectPrograms(programs, alternatives, kinds('tp_btf', 'fentry', 'kprobe', 'cgroup'), false, noTracepoint);
  assert.deepEqual(selected.map((s) => `${s.name}:${s.kind}`), ['rcv_fentry:fentry', 'ops:cgroup']);
  assert.deepEqual(disabled.sort(), ['rcv_kprobe', 'rcv_tp']);
});

test('a program without alternatives whose target is missing is left out and named; the rest load', () => {
  const extra: ProgramInfo[] = [...programs, { name: 'snd_tp', section: 'tp_btf/tcp_sendmsg_locked', type: 26, autoload: true }];
  const exists = (section: string) => section !== 'tp_btf/tcp_sendmsg_locked';
  const { selected, disabled, missing } = selectPrograms(extra, alternatives, kinds('tp_btf', 'cgroup'), false, exists);
  assert.deepEqual(selected.map((s) => s.name), ['rcv_tp', 'ops']);
  assert.deepEqual(missing.map((m) => m.section), ['tp_btf/tcp_sendmsg_locked']);
  assert.ok(disabled.includes('snd_tp'));
});

test('no usable variant: the error says per variant whether the kind or the target is missing', () => {
  assert.throws(
    () => selectPrograms(programs, alternatives, kinds('tp_btf', 'cgroup'), false, (s) => !s.startsWith('tp_btf/')),
    /tp_btf\/tcp_rcv_space_adjust: no such target here; fentry\/tcp_rcv_space_adjust: fentry not supported/,
  );
});

test('a conditional program loads only where its test says this kernel needs it, and its flag goes with it', () => {
  const udp: ProgramInfo[] = [
    { name: 'udp_fail_queue_rcv_skb', section: 'tp_btf/udp_fail_queue_rcv_skb', type: 26, autoload: true },
    { name: 'udp_buffer_enqueue_exit', section: 'fexit/__udp_enqueue_schedule_skb', type: 26, autoload: true },
  ];
  const conditions = [{ program: 'udp_buffer_enqueue_exit', neededBecause: ipv6FexitNeeded, flag: 'udp_buffer_ipv6_by_fexit' }];
  const loaded = (release: string) => {
    const c = applyConditions(udp, conditions, kernelFacts(release));
    const { selected } = selectPrograms(c.programs, [], kinds('tp_btf', 'fentry'), false);
    return { names: selected.map((s) => s.name), needed: c.needed, skipped: c.skipped };
  };
  const old = loaded('6.1.0-57-cloud-amd64');
  assert.deepEqual(old.names, ['udp_fail_queue_rcv_skb', 'udp_buffer_enqueue_exit']);
  assert.equal(old.needed[0]?.flag, 'udp_buffer_ipv6_by_fexit');
  assert.match(old.needed[0]?.because ?? '', /kernel 6\.1\.0-57-cloud-amd64 is older than 6\.4: its IPv6 UDP receive path does not call udp:udp_fail_queue_rcv_skb/);
  assert.deepEqual(loaded('5.15.0-100-generic').names, ['udp_fail_queue_rcv_skb', 'udp_buffer_enqueue_exit']);
  for (const release of ['6.4.0', '6.12.48+deb13-amd64', '6.18.44-fc-v1045', '7.0.1', 'not-a-version']) {
    const r = loaded(release);
    assert.deepEqual(r.names, ['udp_fail_queue_rcv_skb'], release);
    assert.deepEqual(r.skipped, ['udp_buffer_enqueue_exit'], release);
  }
  assert.deepEqual(kernelFacts('6.12.48+deb13-amd64').version, [6, 12]);
  assert.throws(() => applyConditions(udp, [{ program: 'nope', neededBecause: () => 'x' }], kernelFacts('6.1.0')), /'nope' is not a program/);
});

test("udp_buffer's kfree_skb program for memory refusals is needed from 6.18 only", () => {
  for (const release of ['6.18.44-fc-v1045', '6.19.0', '7.1.0']) assert.match(memoryKfreeNeeded(kernelFacts(release)) ?? '', /is 6\.18 or later/, release);
  for (const release of ['6.1.0-57-cloud-amd64', '6.12.48+deb13-amd64', '6.17.9', '5.15.0', 'garbage']) assert.equal(memoryKfreeNeeded(kernelFacts(release)), undefined, release);
});

test('BPFTUNE_DISABLE_PROGRAMS: a program left out passes its hook to the next variant, as a missing target would', () => {
  const names = disabledProgramsSetting({ BPFTUNE_DISABLE_PROGRAMS: ' rcv_tp, nothing_such  ops' });
  assert.deepEqual([...names].sort(), ['nothing_such', 'ops', 'rcv_tp']);
  assert.equal(disabledProgramsSetting({}).size, 0);
  const given = leaveOut(programs, names);
  assert.deepEqual(given.leftOut, ['rcv_tp', 'ops'], 'only the object\'s own programs are named');
  const { selected } = selectPrograms(given.programs, alternatives, kinds('tp_btf', 'fentry', 'kprobe', 'cgroup'), false);
  assert.deepEqual(selected.map((s) => s.name), ['rcv_fentry']);
  assert.throws(
    () => selectPrograms(leaveOut(programs, new Set(['rcv_tp', 'rcv_fentry', 'rcv_kprobe'])).programs, alternatives, kinds('tp_btf', 'fentry', 'kprobe', 'cgroup'), false),
    /tp_btf\/tcp_rcv_space_adjust: rcv_tp left out/,
  );
});
