/**
 * The tuner's event handling with a stand-in context and maps (pure logic:
 * the kernel side is covered by tcp_conn.test.ts): what is logged for a loss
 * switch, when the allowed list is touched, and what reaches the choice map.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import type { NativeMap } from '../../core/native';
import type { ActionRecord, ChangeRequest, TunerContext, TunerEvent } from '../../core/tuner';
import tcpConnTuner from './index';
import { ALGORITHM_IDS, AF_INET, COUNT_THIN_LTO, EVENT_DATA_LAYOUT, EVENT_DATA_SIZE, SCENARIO_LOSS, SCENARIO_SAMPLE, SCENARIO_SET_FAILED, decodeRemote } from './layout';

class FakeMap {
  readonly entries = new Map<string, Buffer>();
  update(key: Buffer, value: Buffer): void {
    this.entries.set(key.toString('hex'), Buffer.from(value));
  }
  delete(key: Buffer): boolean {
    return this.entries.delete(key.toString('hex'));
  }
  lookup(key: Buffer): Buffer | null {
    return this.entries.get(key.toString('hex')) ?? null;
  }
  keys(): Buffer[] {
    return [...this.entries.keys()].map((k) => Buffer.from(k, 'hex'));
  }
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

function u64(n: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
}

function fakeContext(allowed: string) {
  const maps = { tcp_conn_choices: new FakeMap(), tcp_conn_manual: new FakeMap(), tcp_conn_counts: new FakeMap(), tcp_conn_thin_lto: new FakeMap() };
  const timers: Array<() => Promise<void> | void> = [];
  const actions: ActionRecord[] = [];
  const changes: ChangeRequest[] = [];
  const ctx = {
    name: 'tcp_conn',
    log: { debugEnabled: false, error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined },
    learningShift: 2,
    bpf: { map: (name: keyof typeof maps) => maps[name] as unknown as NativeMap, attachModes: ['cgroup'] },
    get: async () => [allowed],
    set: async (change: ChangeRequest) => {
      changes.push(change);
      return true;
    },
    recordAction: async (action: ActionRecord) => {
      actions.push(action);
      return true;
    },
    manualNamespaces: () => [],
    every: (_ms: number, task: () => Promise<void> | void) => timers.push(task),
  } as unknown as TunerContext;
  return { ctx, maps, actions, changes, timers };
}

interface Payload {
  scenario: number;
  alg: number;
  setsockoptErr?: number;
  minRttUs?: number;
  bytesAcked?: bigint;
  durationUs?: bigint;
}

function event({ scenario, alg, setsockoptErr = 0, minRttUs = 0, bytesAcked = 0n, durationUs = 0n }: Payload): TunerEvent {
  const data = Buffer.alloc(128);
  const L = EVENT_DATA_LAYOUT;
  data.writeBigUInt64LE(4097n, L.remote);
  data.writeUInt32LE(AF_INET, L.remote + 8);
  Buffer.from([198, 18, 1, 2]).copy(data, L.remote + 12);
  Buffer.from([198, 18, 1, 2]).copy(data, L.peer);
  data.writeUInt32LE(alg, L.alg);
  data.writeInt32LE(setsockoptErr, L.setsockopt_err);
  data.writeUInt32LE(minRttUs, L.min_rtt_us);
  data.writeBigUInt64LE(bytesAcked, L.bytes_acked);
  data.writeBigUInt64LE(durationUs, L.duration_us);
  assert.ok(EVENT_DATA_SIZE <= data.length);
  return { tunerId: 1, scenarioId: scenario, netnsCookie: 4097n, netnsInum: 1, pid: 0, ktimeNs: 0n, oldValues: [0, 0, 0], newValues: [0, 0, 0], data };
}

async function loaded(allowed = 'reno bbr') {
  const fake = fakeContext(allowed);
  await tcpConnTuner.init?.(fake.ctx);
  return fake;
}

test('a loss switch is logged with the compat reason line, in the namespace it happened in', async () => {
  const { ctx, actions, changes } = await loaded();
  await tcpConnTuner.event?.(event({ scenario: SCENARIO_LOSS, alg: ALGORITHM_IDS.bbr }), ctx);
  assert.deepEqual(actions, [
    {
      tunable: 'net.ipv4.tcp_congestion_control',
      scenario: 0,
      netnsCookie: 4097n,
      reason: "loss events for 198.18.1.2, specify 'bbr' congestion control algorithm",
    },
  ]);
  assert.deepEqual(changes, [], 'no sysctl is written for a per-connection switch');
});

test('the allowed list is extended only when the kernel refused an algorithm with EPERM', async () => {
  const { ctx, actions, changes } = await loaded('reno bbr');
  await tcpConnTuner.event?.(event({ scenario: SCENARIO_SET_FAILED, alg: ALGORITHM_IDS.cubic, setsockoptErr: -1 }), ctx);
  assert.deepEqual(
    changes.map((c) => [c.tunable, c.values]),
    [['net.ipv4.tcp_allowed_congestion_control', ['reno bbr cubic']]],
  );
  // bbr is already allowed; another error is not a permission problem.
  await tcpConnTuner.event?.(event({ scenario: SCENARIO_LOSS, alg: ALGORITHM_IDS.bbr, setsockoptErr: -1 }), ctx);
  await tcpConnTuner.event?.(event({ scenario: SCENARIO_SET_FAILED, alg: ALGORITHM_IDS.reno, setsockoptErr: -22 }), ctx);
  assert.equal(changes.length, 1);
  assert.deepEqual(actions, [], 'a failed switch is not reported as made');
});

test('measurements steer a remote host once it has been seen three times, through the choice map', async () => {
  const { ctx, maps, actions } = await loaded();
  const sample = (alg: number, bytes: bigint) =>
    tcpConnTuner.event?.(event({ scenario: SCENARIO_SAMPLE, alg, minRttUs: 20_000, bytesAcked: bytes, durationUs: 1_000_000n }), ctx);
  await sample(ALGORITHM_IDS.bbr, 10_000_000n);
  await sample(ALGORITHM_IDS.bbr, 11_000_000n);
  assert.equal(maps.tcp_conn_choices.entries.size, 0, 'not steered after two');
  await sample(ALGORITHM_IDS.bbr, 12_000_000n);
  assert.equal(maps.tcp_conn_choices.entries.size, 1);
  const [[key = '', value] = []] = [...maps.tcp_conn_choices.entries];
  assert.deepEqual(decodeRemote(Buffer.from(key, 'hex')), { netnsCookie: 4097n, family: AF_INET, addr: Buffer.from([198, 18, 1, 2, ...Array<number>(12).fill(0)]) });
  // reno is untried: it is tried first.
  assert.equal(value?.readUInt32LE(0), ALGORITHM_IDS.reno);
  assert.match(actions.at(-1)?.reason ?? '', /^lowest learned cost \([\d.]+\) for 198\.18\.1\.2, specify 'bbr' congestion control algorithm$/);

  const report = tcpConnTuner.report?.(ctx);
  assert.match(report?.text ?? '', /198\.18\.1\.2\s+4097\s+bbr\s+0\.\d{3}\s+0\s+0\s+3\s+20000\s+96\.0 Mbit\/s/);
  // A sample without a duration, or of an algorithm bpftune does not choose among, teaches nothing.
  await tcpConnTuner.event?.(event({ scenario: SCENARIO_SAMPLE, alg: 0, minRttUs: 1, bytesAcked: 1n, durationUs: 1n }), ctx);
  await tcpConnTuner.event?.(event({ scenario: SCENARIO_SAMPLE, alg: ALGORITHM_IDS.bbr, minRttUs: 1, bytesAcked: 1n, durationUs: 0n }), ctx);
  assert.match(tcpConnTuner.report?.(ctx).text ?? '', /bbr\s+0\.\d{3}\s+0\s+0\s+3\s/);
});

test('thin linear timeouts set by the BPF side are logged per namespace as they grow, and totalled in the reference summary lines', async () => {
  const { ctx, maps, actions, timers } = await loaded();
  const runTimers = async () => {
    for (const task of timers) await task();
  };
  maps.tcp_conn_thin_lto.update(u64(4097n), u64(3n));
  await runTimers();
  assert.deepEqual(actions, [
    {
      tunable: 'net.ipv4.tcp_thin_linear_timeouts',
      scenario: 2,
      netnsCookie: 4097n,
      reason:
        'retransmissions on 3 connection(s), set TCP_THIN_LINEAR_TIMEOUTS on them, so that while they are thin their retransmission timeouts stay linear instead of doubling',
    },
  ]);
  await runTimers();
  assert.equal(actions.length, 1, 'nothing new, nothing logged');
  maps.tcp_conn_thin_lto.update(u64(4097n), u64(5n));
  await tcpConnTuner.fini?.(ctx);
  assert.match(actions.at(-1)?.reason ?? '', /^retransmissions on 2 connection\(s\)/, 'fini logs what grew since');
});

test('the report starts with the reference summary lines: thin linear timeouts and the CongAlg/Count table', async () => {
  const { ctx, maps } = await loaded();
  assert.equal(
    tcpConnTuner.report?.(ctx).text.split('\n')[0],
    '             CongAlg                Count',
    'no thin linear timeouts line while there are none',
  );
  maps.tcp_conn_counts.update(u32(COUNT_THIN_LTO), u64(7n));
  maps.tcp_conn_counts.update(u32(ALGORITHM_IDS.bbr), u64(12n));
  const lines = tcpConnTuner.report?.(ctx).text.split('\n') ?? [];
  assert.equal(lines[0], "set 'net.ipv4.tcp_thin_linear_timeouts' for 7 connections to improve responsiveness of thin flows durning retransmission");
  assert.equal(lines[1], '             CongAlg                Count');
  assert.ok(lines.includes('                 bbr                   12'), lines.join('\n'));
  assert.ok(lines.includes('                reno                    0'), lines.join('\n'));
});
