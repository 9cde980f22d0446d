import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { keptSuperOptions } from '../../src/core/mounts';

test("a second cgroup2 mount passes the first one's superblock options, so systemd's nsdelegate stays on", () => {
  const systemd = [
    { mountPoint: '/sys/fs/cgroup', fstype: 'cgroup2', superOptions: 'rw,nsdelegate,memory_recursiveprot' },
    { mountPoint: '/sys/kernel/tracing', fstype: 'tracefs', superOptions: 'rw' },
  ];
  assert.equal(keptSuperOptions(systemd, 'cgroup2'), 'nsdelegate,memory_recursiveprot');
  // Plain options, or none mounted yet: nothing to pass.
  assert.equal(keptSuperOptions([{ mountPoint: '/sys/fs/cgroup/unified', fstype: 'cgroup2', superOptions: 'rw' }], 'cgroup2'), undefined);
  assert.equal(keptSuperOptions([{ mountPoint: '/sys/kernel/tracing', fstype: 'tracefs', superOptions: 'rw' }], 'cgroup2'), undefined);
});
