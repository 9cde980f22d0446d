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
import { ALGORITHM_IDS, AF_INET, EVENT_DATA_LAYOUT, EVENT_DATA_SIZE, SCENARIO_LOSS, SCENARIO_SAMPLE, SCENARIO_SET_FAILED, decodeRemote } from './layout';

class FakeMap {
  readonly entries = new Map<string, Buffer>();
  update(key: Buffer, value: Buffer): void {
    this.entries.set(key.toString('hex'), Buffer.from(value));
  }
  delete(key: Buffer): boolean {
    return this.entries.delete(key.toString('hex'));
  }
}

function fakeContext(allowed: string) {
  const maps = { tcp_conn_choices: new FakeMap(), tcp_conn_manual: new FakeMap() };
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
    every: () => undefined,
  } as unknown as TunerContext;
  return { ctx, maps, actions, changes };
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
