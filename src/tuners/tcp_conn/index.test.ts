/**
 * The tuner's event handling with a stand-in context and maps (pure logic:
 * the kernel side is covered by tcp_conn.test.ts): what is logged for a loss
 * switch, when the allowed list is touched, and what reaches the choice map.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import type { TunerEvent } from '../../core/tuner';
import { fakeContext } from '../../../test/support/fake-context';
import tcpConnTuner from './index';
import { AF_INET, addressWords } from './address';
import { TcpConnAlg as ALGORITHM_IDS, TcpConnEventData, TcpConnScenario } from './tcp_conn.contract';

const { LOSS: SCENARIO_LOSS, SAMPLE: SCENARIO_SAMPLE, SET_FAILED: SCENARIO_SET_FAILED } = TcpConnScenario;
const ADDRESS = addressWords(Buffer.from([198, 18, 1, 2, ...Array<number>(12).fill(0)]));

interface Payload {
  scenario: number;
  alg: number;
  setsockoptErr?: number;
  minRttUs?: number;
  bytesAcked?: bigint;
  durationUs?: bigint;
}

function event({ scenario, alg, setsockoptErr = 0, minRttUs = 0, bytesAcked = 0n, durationUs = 0n }: Payload): TunerEvent {
  const data = TcpConnEventData.encode(
    {
      remote: { netnsCookie: 4097n, family: AF_INET, addr: ADDRESS },
      peer: ADDRESS,
      alg,
      initialAlg: 0,
      learned: 0,
      setsockoptErr,
      minRttUs,
      totalRetrans: 0,
      segsOut: 0,
      dataSegsOut: 0,
      bytesAcked,
      durationUs,
    },
    Buffer.alloc(128),
  );
  return { tunerId: 1, scenarioId: scenario, netnsCookie: 4097n, netnsInum: 1, pid: 0, ktimeNs: 0n, oldValues: [0, 0, 0], newValues: [0, 0, 0], data };
}

async function loaded(allowed = 'reno bbr') {
  const fake = fakeContext('tcp_conn', { 'net.ipv4.tcp_allowed_congestion_control': [allowed] });
  const instance = await tcpConnTuner.create(fake.ctx);
  return { ...fake, event: (e: TunerEvent) => instance.event?.(e), report: () => instance.report?.() };
}

test('a loss switch is logged with the compat reason line, in the namespace it happened in', async () => {
  const { event: handle, actions, changes } = await loaded();
  await handle(event({ scenario: SCENARIO_LOSS, alg: ALGORITHM_IDS.BBR }));
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
  const { event: handle, actions, changes } = await loaded('reno bbr');
  await handle(event({ scenario: SCENARIO_SET_FAILED, alg: ALGORITHM_IDS.CUBIC, setsockoptErr: -1 }));
  assert.deepEqual(
    changes.map((c) => [c.tunable, c.values]),
    [['net.ipv4.tcp_allowed_congestion_control', ['reno bbr cubic']]],
  );
  // bbr is already allowed; another error is not a permission problem.
  await handle(event({ scenario: SCENARIO_LOSS, alg: ALGORITHM_IDS.BBR, setsockoptErr: -1 }));
  await handle(event({ scenario: SCENARIO_SET_FAILED, alg: ALGORITHM_IDS.RENO, setsockoptErr: -22 }));
  assert.equal(changes.length, 1);
  assert.deepEqual(actions, [], 'a failed switch is not reported as made');
});

test('measurements steer a remote host once it has been seen three times, through the choice map', async () => {
  const { event: handle, report, maps, actions } = await loaded();
  const sample = (alg: number, bytes: bigint) =>
    handle(event({ scenario: SCENARIO_SAMPLE, alg, minRttUs: 20_000, bytesAcked: bytes, durationUs: 1_000_000n }));
  await sample(ALGORITHM_IDS.BBR, 10_000_000n);
  await sample(ALGORITHM_IDS.BBR, 11_000_000n);
  assert.equal(maps.get('tcp_conn_choices')?.entries.size, 0, 'not steered after two');
  await sample(ALGORITHM_IDS.BBR, 12_000_000n);
  assert.equal(maps.get('tcp_conn_choices')?.entries.size, 1);
  const [[key = '', value] = []] = [...(maps.get('tcp_conn_choices')?.entries ?? [])];
  // The key as the BPF side reads it: cookie, family, then the address bytes in network order.
  assert.deepEqual(
    Buffer.from(key, 'hex'),
    Buffer.from([1, 16, 0, 0, 0, 0, 0, 0, AF_INET, 0, 0, 0, 198, 18, 1, 2, ...Array<number>(16).fill(0)]),
  );
  // reno is untried: it is tried first.
  assert.equal(value?.readUInt32LE(0), ALGORITHM_IDS.RENO);
  assert.match(actions.at(-1)?.reason ?? '', /^lowest learned cost \([\d.]+\) for 198\.18\.1\.2, specify 'bbr' congestion control algorithm$/);

  assert.match(report()?.text ?? '', /198\.18\.1\.2\s+4097\s+bbr\s+0\.\d{3}\s+0\s+0\s+3\s+20000\s+96\.0 Mbit\/s/);
  // A sample without a duration, or of an algorithm bpftune does not choose among, teaches nothing.
  await handle(event({ scenario: SCENARIO_SAMPLE, alg: 0, minRttUs: 1, bytesAcked: 1n, durationUs: 1n }));
  await handle(event({ scenario: SCENARIO_SAMPLE, alg: ALGORITHM_IDS.BBR, minRttUs: 1, bytesAcked: 1n, durationUs: 0n }));
  assert.match(report()?.text ?? '', /bbr\s+0\.\d{3}\s+0\s+0\s+3\s/);
});
