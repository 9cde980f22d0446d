/**
 * Runs the given test files with node's test runner, one file at a time:
 * kernel-facing tests share the root cgroup's BPF attachments and global
 * sysctls. `node --test --test-concurrency=1` does this on Node 20, but
 * Debian 12's Node 18.20 has no such flag; run() with concurrency 1 queues
 * the files behind each other on both, and node's own reporter prints the
 * usual closing lines (tests/pass/fail).
 */
import type { Readable } from 'node:stream';
import { run } from 'node:test';
import { spec, tap } from 'node:test/reporters';

const files = process.argv.slice(2);
if (files.length === 0) {
  process.stderr.write('usage: node dist/test/run-tests.js FILE.test.js...\n');
  process.exit(2);
}
const stream = run({ files, concurrency: 1 });
stream.on('test:fail', () => {
  process.exitCode = 1;
});
// node --test's own choice: spec on a terminal, TAP otherwise (CI reads either).
stream.compose<Readable>(process.stdout.isTTY ? new spec() : tap).pipe(process.stdout);
