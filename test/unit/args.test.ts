import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { parseArgs, UsageError } from '../../src/cli/args';

test('defaults match the reference: learning rate 4, syslog, no rollback', () => {
  const o = parseArgs([]);
  assert.equal(o.learningRate, 4);
  assert.equal(o.stderr, false);
  assert.equal(o.rollback, false);
  assert.deepEqual(o.allow, []);
});

test('short options bundle and take attached or separate values', () => {
  const o = parseArgs(['-sdR', '-r2', '-a', 'tcp_buffer', '-atcp_conn', '-c', '/cg', '-l/lib', '-p', '1234']);
  assert.equal(o.stderr, true);
  assert.equal(o.debug, true);
  assert.equal(o.rollback, true);
  assert.equal(o.learningRate, 2);
  assert.deepEqual(o.allow, ['tcp_buffer', 'tcp_conn']);
  assert.equal(o.cgroup, '/cg');
  assert.equal(o.libdir, '/lib');
  assert.equal(o.port, 1234);
});

test('long options take =value or a separate value', () => {
  const o = parseArgs(['--learning_rate=0', '--query', 'status', '--support', '--legacy', '--print-libdir', '--daemon']);
  assert.equal(o.learningRate, 0);
  assert.equal(o.query, 'status');
  assert.ok(o.support && o.legacy && o.printLibdir && o.daemon);
});

test('learning rate outside 0-4 is refused with the reference message', () => {
  for (const bad of ['9', '-1', '5', 'x', '']) {
    assert.throws(() => parseArgs(['-r', bad]), (e: unknown) => e instanceof UsageError && e.message === 'values 0-4 are supported');
  }
});

test('unknown options are named as the reference names them', () => {
  assert.throws(() => parseArgs(['--bogus']), (e: unknown) => e instanceof UsageError && e.message === "unrecognized option '--bogus'" && e.showUsage);
  assert.throws(() => parseArgs(['-x']), (e: unknown) => e instanceof UsageError && e.message === "unrecognized option '-x'");
});

test('missing and unexpected arguments are errors', () => {
  assert.throws(() => parseArgs(['-q']), UsageError);
  assert.throws(() => parseArgs(['--allow']), UsageError);
  assert.throws(() => parseArgs(['--debug=1']), UsageError);
  assert.throws(() => parseArgs(['stray']), UsageError);
  assert.throws(() => parseArgs(['-p', '70000']), UsageError);
});

test("-a accepts the reference's spellings of a tuner's name", () => {
  const o = parseArgs(['-a', 'tcp_buffer_tuner.so', '-a', '/usr/lib64/bpftune/neigh_table_tuner.so', '-a', 'tcp_conn_tuner', '-a', 'netns']);
  assert.deepEqual(o.allow, ['tcp_buffer', 'neigh_table', 'tcp_conn', 'netns']);
});

test('-l must be an absolute path without . or .. components', () => {
  assert.equal(parseArgs(['-l', '/usr/local/lib64/bpftune/']).libdir, '/usr/local/lib64/bpftune');
  for (const bad of ['lib', './lib', '/usr/../tmp', '/usr/./lib']) {
    assert.throws(() => parseArgs(['-l', bad]), (e: unknown) => e instanceof UsageError && /plugin directory/.test(e.message), bad);
  }
});
