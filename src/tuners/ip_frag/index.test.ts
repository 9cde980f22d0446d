/**
 * ip_frag's event handler on a fake context (the kernel side is covered by
 * ip_frag.test.ts): drops with a failure rate that rises with each increase
 * make it step the threshold back down; a falling one keeps it growing.
 * A real fragment flood that would do this is not generated.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { fakeContext } from '../../../test/support/fake-context';
import type { TunerEvent } from '../../core/tuner';
import ipFragTuner from './index';
import { IpFragEventData, IpFragFamily, IpFragScenario } from './ip_frag.contract';
import { IPV4_HIGH_THRESH } from './reassembly';

function dropEvent(highThresh: number): TunerEvent {
  const data = Buffer.alloc(128);
  IpFragEventData.encode({ family: IpFragFamily.IPV4, mem: BigInt(highThresh + 1), highThresh: BigInt(highThresh), windowNs: 250_000_000n }, data);
  return { tunerId: 1, scenarioId: IpFragScenario.INCREASE, netnsCookie: 1n, netnsInum: 1, pid: 0, ktimeNs: 0n, oldValues: [14, 0, 0], newValues: [0, 0, 0], data };
}

function snmp(reqds: number, fails: number): string {
  return `Ip: Forwarding DefaultTTL ReasmReqds ReasmOKs ReasmFails\nIp: 1 64 ${reqds} 0 ${fails}\n`;
}

/** Feeds one drop event per failure percentage (100 new fragments each) and returns the changes made. */
async function run(failPercents: number[]): Promise<ReturnType<typeof fakeContext>['changes']> {
  const fake = fakeContext('ip_frag', { [IPV4_HIGH_THRESH]: [8192] });
  let reqds = 1000;
  let fails = 0;
  fake.ctx.readProcNet = async () => snmp(reqds, fails);
  const tuner = await ipFragTuner.create(fake.ctx);
  await tuner.event?.(dropEvent(8192));
  for (const percent of failPercents) {
    reqds += 100;
    fails += percent;
    const [current = 0] = (await fake.ctx.tunable({ name: IPV4_HIGH_THRESH, namespaced: true, values: 1 }).get());
    await tuner.event?.(dropEvent(current));
  }
  return fake.changes;
}

test('failures rising with each increase make the threshold step back down', async () => {
  const changes = await run([20, 30, 45, 60]);
  assert.deepEqual(
    changes.map((c) => [c.scenario, c.values[0]]),
    [
      [IpFragScenario.INCREASE, 10240],
      [IpFragScenario.INCREASE, 12800],
      [IpFragScenario.INCREASE, 16000],
      [IpFragScenario.INCREASE, 20000],
      [IpFragScenario.DECREASE, 15000],
    ],
  );
  assert.match(changes.at(-1)?.reason ?? '', /^reassembly failures rising with the fragmentation threshold \(correlation [01]\.\d\d; 14 fragments dropped in the global netns/);
});

test('failures falling as the threshold grows keep it growing', async () => {
  const changes = await run([90, 70, 40, 10, 0]);
  assert.ok(changes.every((c) => c.scenario === IpFragScenario.INCREASE));
  assert.equal(changes.length, 6);
  assert.match(changes[0]?.reason ?? '', /^approaching fragmentation maximum threshold \(14 fragments dropped in the global netns with 8193 bytes queued for reassembly\)$/);
});
