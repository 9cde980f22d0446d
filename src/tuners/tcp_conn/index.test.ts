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
import { TcpConnAlg as ALGORITHM_IDS, TcpConnCount, TcpConnEventData, TcpConnScenario, TcpConnStrategy } from './tcp_conn.contract';

const { LOSS: SCENARIO_LOSS, SAMPLE: SCENARIO_SAMPLE, SET_FAILED: SCENARIO_SET_FAILED } = TcpConnScenario;
const ADDRESS = addressWords(Buffer.from([198, 18, 1, 2, ...Array<number>(12).fill(0)]));

interface Payload {
  scenario: number;
  alg: number;
  setsockoptErr?: number;
  minRttUs?: number;
  bytesAcked?: bigint;
  durationUs?: bigint;
  strategy?: number;
}

function event({ scenario, alg, setsockoptErr = 0, minRttUs = 0, bytesAcked = 0n, durationUs = 0n, strategy = 0 }: Payload): TunerEvent {
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
      strategy,
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

test('measurements steer a remote host from its first, through the choice map; the lead is logged once every algorithm was tried', async () => {
  const { event: handle, report, maps, actions } = await loaded();
  const sample = (alg: number, bytes: bigint) =>
    handle(event({ scenario: SCENARIO_SAMPLE, alg, minRttUs: 20_000, bytesAcked: bytes, durationUs: 1_000_000n }));
  const choice = () => [...(maps.get('tcp_conn_choices')?.entries ?? [])];
  const learned = () => actions.filter((a) => /lowest learned cost/.test(a.reason));
  // No exploration in this test: the greedy choice is the one asserted.
  const random = Math.random;
  Math.random = () => 0.99;
  try {
    await sample(ALGORITHM_IDS.BBR, 12_000_000n);
    assert.equal(choice().length, 1);
    const [[key = '', value] = []] = choice();
    // The key as the BPF side reads it: cookie, family, then the address bytes in network order.
    assert.deepEqual(
      Buffer.from(key, 'hex'),
      Buffer.from([1, 16, 0, 0, 0, 0, 0, 0, AF_INET, 0, 0, 0, 198, 18, 1, 2, ...Array<number>(16).fill(0)]),
    );
    // Untried algorithms come first, in order; nothing is logged while they are tried.
    assert.equal(value?.readUInt32LE(0), ALGORITHM_IDS.RENO);
    await sample(ALGORITHM_IDS.RENO, 6_000_000n);
    assert.equal(choice()[0]?.[1].readUInt32LE(0), ALGORITHM_IDS.CUBIC);
    assert.deepEqual(learned(), [], 'no lead is logged before every algorithm was tried');
    await sample(ALGORITHM_IDS.CUBIC, 5_000_000n);
    assert.equal(choice()[0]?.[1].readUInt32LE(0), ALGORITHM_IDS.BBR);
  } finally {
    Math.random = random;
  }
  assert.deepEqual(
    learned().map((a) => a.reason),
    ["lowest learned cost (0.000) for 198.18.1.2, specify 'bbr' congestion control algorithm"],
  );

  assert.match(report()?.text ?? '', /198\.18\.1\.2\s+4097\s+bbr\s+0\.000\s+1\s+1\s+1\s+20000\s+96\.0 Mbit\/s/);
  // A sample without a duration, or of an algorithm bpftune does not choose among, teaches nothing.
  await handle(event({ scenario: SCENARIO_SAMPLE, alg: 0, minRttUs: 1, bytesAcked: 1n, durationUs: 1n }));
  await handle(event({ scenario: SCENARIO_SAMPLE, alg: ALGORITHM_IDS.BBR, minRttUs: 1, bytesAcked: 1n, durationUs: 0n }));
  assert.match(report()?.text ?? '', /bbr\s+0\.000\s+1\s+1\s+1\s/);
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

test('strategies: the learner runs first; each is scored from the connections established under it; only the learner writes choices', async () => {
  const { event: handle, maps, strategies } = await loaded();
  assert.deepEqual(
    strategies.declarations.map((d) => [d.name, d.programs]),
    [
      ['learned-per-host', ['tcp_conn_sockops']],
      ['bbr-on-loss', ['tcp_conn_sockops']],
      ['kernel-default', ['tcp_conn_sockops']],
    ],
  );
  const mode = () => maps.get('tcp_conn_mode')?.entries.get('00000000')?.readUInt32LE(0);
  assert.equal(mode(), TcpConnStrategy.LEARNED, 'the running strategy is in the map the BPF side reads');
  const score = (name: string) => strategies.declarations.find((d) => d.name === name)?.evaluate();

  await strategies.switchTo('bbr-on-loss');
  assert.equal(mode(), TcpConnStrategy.BBR_ON_LOSS);
  const sample = (strategy: number, megabytes: number) =>
    handle(event({ scenario: SCENARIO_SAMPLE, alg: ALGORITHM_IDS.BBR, minRttUs: 20_000, bytesAcked: BigInt(megabytes * 1e6), durationUs: 1_000_000n, strategy }));
  for (let i = 0; i < 4; i++) await sample(TcpConnStrategy.BBR_ON_LOSS, 10);
  assert.equal(maps.get('tcp_conn_choices')?.entries.size, 0, 'the learner learns but does not steer while another strategy runs');
  assert.equal(await score('kernel-default'), undefined, 'nothing measured under it');
  // Connections established under the baseline but closing now count for the baseline.
  for (let i = 0; i < 3; i++) await sample(TcpConnStrategy.DEFAULT, 2);
  const loss = await score('bbr-on-loss');
  const baseline = await score('kernel-default');
  assert.equal(loss?.score, 1);
  assert.equal(loss?.samples, 4);
  assert.ok(Math.abs((baseline?.score ?? 0) - 0.2) < 1e-9, `a fifth of the best delivery rate to the same host: ${baseline?.score}`);
  assert.match(baseline?.basis ?? '', /^mean delivery rate 16\.0 Mbit\/s, to 1 remote host$/);

  await strategies.switchTo('learned-per-host');
  await sample(TcpConnStrategy.LEARNED, 10);
  assert.equal(maps.get('tcp_conn_choices')?.entries.size, 1, 'back under the learner, it steers');
});
