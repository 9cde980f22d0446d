import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { capabilityMask, capabilityNames, KEEP_CAPS_ENV, relaunchCommand } from '../../src/core/capabilities';

test('the kept set has no CAP_DAC_* and names its bits', () => {
  const mask = capabilityMask();
  assert.equal(mask & 0b110n, 0n);
  assert.equal(capabilityNames(mask & ((1n << 39n) | (1n << 12n))), 'CAP_NET_ADMIN CAP_BPF');
  assert.equal(capabilityNames(0n), 'none');
  assert.equal(capabilityNames(1n << 1n), '0x2');
});

test('the relaunch preloads the addon first, keeps other preloads and passes the mask', () => {
  const cmd = relaunchCommand('/usr/lib/bpftune/addon.node', '/usr/bin/node', ['/usr/sbin/bpftune', '-s'], { PATH: '/bin', LD_PRELOAD: '/lib/x.so', GONE: undefined });
  assert.ok(!('cannot' in cmd));
  assert.deepEqual(cmd.argv, ['/usr/bin/node', '/usr/sbin/bpftune', '-s']);
  assert.ok(cmd.env.includes('LD_PRELOAD=/usr/lib/bpftune/addon.node:/lib/x.so'));
  assert.ok(cmd.env.includes(`${KEEP_CAPS_ENV}=${capabilityMask().toString(16)}`));
  assert.ok(cmd.env.includes('PATH=/bin'));
  assert.ok(!cmd.env.some((e) => e.startsWith('GONE=')));
});

test('an addon path ld.so would split is refused with the reason', () => {
  const cmd = relaunchCommand('/opt/my dir/addon.node', '/usr/bin/node', [], {});
  assert.ok('cannot' in cmd && /space or colon/.test(cmd.cannot));
});
