import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import type { TunableAccess, TunableDeclaration } from '../../src/core/tuner';
import { globalTunables } from '../support/global-sysctls';

test('globalTunables: a tuner\'s global /proc/sys tunables, an optional one only where this kernel has it', () => {
  const access: TunableAccess = { read: () => Promise.resolve([]), write: () => Promise.resolve(), command: () => '' };
  const tunables: TunableDeclaration[] = [
    { name: 'net.core.somaxconn', namespaced: true, values: 1 },
    { name: 'net.core.rmem_max', namespaced: false, values: 1 },
    // Every kernel has kernel.ostype; none has the second.
    { name: 'kernel.ostype', namespaced: false, values: 1, string: true, optional: true },
    { name: 'net.core.no_such_sysctl_here', namespaced: false, values: 1, optional: true },
    { name: 'net.ipv4.neigh.default.gc_thresh1', namespaced: false, values: 1, access },
  ];
  assert.deepEqual(globalTunables({ tunables }), ['net.core.rmem_max', 'kernel.ostype']);
});
