import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { selectPrograms } from '../../src/core/program-selection';
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
