import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { readProcText } from '../../src/core/proc-text';

test('a multi-record /proc file is read whole, past its first page (Node 18 fs.promises.readFile stops there)', async () => {
  // kallsyms: one record per symbol, megabytes long, and the same on every read.
  const text = await readProcText('/proc/kallsyms');
  assert.ok(text.length > 65536, `read ${text.length} bytes`);
  assert.equal(text, readFileSync('/proc/kallsyms', 'utf8'));
});
