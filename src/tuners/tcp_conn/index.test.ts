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
import { TcpConnAlg as ALGORITHM_IDS, TcpConnCount, TcpConnEventData, TcpConnScenario } from './tcp_conn.contract';

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
  return { ...fake, event: (e: TunerEvent) => instance.event?.(e), report: () => instance.report?.(), close: async () => instance.close?.() };
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

test('thin linear timeouts set by the BPF side are logged per namespace as they grow, and totalled in the reference summary lines', async () => {
  const { maps, actions, timers, close } = await loaded();
  const runTimers = async () => {
    for (const task of timers) await task();
  };
  const thinLto = maps.get('tcp_conn_thin_lto');
  thinLto?.update(4097n, 3n);
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
  thinLto?.update(4097n, 5n);
  await close();
  assert.match(actions.at(-1)?.reason ?? '', /^retransmissions on 2 connection\(s\)/, 'close logs what grew since');
});

test('the report starts with the reference summary lines: thin linear timeouts and the CongAlg/Count table', async () => {
  const { maps, report } = await loaded();
  assert.equal(report()?.text.split('\n')[0], '             CongAlg                Count', 'no thin linear timeouts line while there are none');
  const counts = maps.get('tcp_conn_counts');
  counts?.update(TcpConnCount.TCP_CONN_COUNT_THIN_LTO, 7n);
  counts?.update(ALGORITHM_IDS.BBR, 12n);
  const lines = report()?.text.split('\n') ?? [];
  assert.equal(lines[0], "set 'net.ipv4.tcp_thin_linear_timeouts' for 7 connections to improve responsiveness of thin flows durning retransmission");
  assert.equal(lines[1], '             CongAlg                Count');
  assert.ok(lines.includes('                 bbr                   12'), lines.join('\n'));
  assert.ok(lines.includes('                reno                    0'), lines.join('\n'));
});
