import { test, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runEffect, type EffectSpec } from './effects';

// Stand-ins for a tuner's effect module: the runner's contract, not a tuner, is under test here.
const dir = mkdtempSync(path.join(os.tmpdir(), 'bpftune-effects-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function fakeModule(name: string, body: string): EffectSpec {
  const file = path.join(dir, `${name}.js`);
  writeFileSync(file, body);
  return { tuner: name, scenario: `${name} scenario`, file, exportName: 'runFake', plotted: false };
}

const quiet = () => undefined;

test('a missing module is "not built yet", without running anything', async () => {
  const outcome = await runEffect({ tuner: 'x', scenario: 'x', file: path.join(dir, 'absent.js'), exportName: 'run', plotted: false }, 1000, false, quiet);
  assert.equal(outcome.status, 'not built yet');
});

test('the result comes back whole, series included, and the quick flag is passed on', async () => {
  const spec = fakeModule(
    'ok',
    `exports.runFake = async () => ({ scenario: 'fake', rows: [{ metric: 'm', value: process.env.BPFTUNE_BENCH_QUICK === '1' ? 'quick' : 'full', met: true }],
      series: { tunableName: 'rmem', without: [{ t: 0, throughputMbit: 1, tunable: 5 }], with: [{ t: 0, throughputMbit: NaN }] } });
     console.log('progress line');`,
  );
  const lines: string[] = [];
  const outcome = await runEffect(spec, 20_000, true, (l) => lines.push(l));
  assert.equal(outcome.status, 'ok');
  assert.equal(outcome.result?.rows[0].value, 'quick');
  assert.deepEqual(outcome.result?.series?.without, [{ t: 0, throughputMbit: 1, tunable: 5 }]);
  // NaN does not survive JSON: it arrives as null, which the plot leaves out.
  assert.equal(outcome.result?.series?.with[0].throughputMbit, null);
  assert.ok(lines.some((l) => l.includes('[ok] progress line')));
});

test('a failing benchmark is reported with its error, and the suite goes on', async () => {
  const spec = fakeModule('broken', `exports.runFake = async () => { throw new Error('link emulator failed to start'); };`);
  const outcome = await runEffect(spec, 20_000, false, quiet);
  assert.equal(outcome.status, 'failed');
  assert.match(outcome.error ?? '', /link emulator failed to start/);
});

test('a wrong export or a wrong shape is a failure that says what is wrong', async () => {
  const noExport = await runEffect(fakeModule('noexport', 'exports.other = 1;'), 20_000, false, quiet);
  assert.match(noExport.error ?? '', /does not export a function runFake/);
  const badShape = await runEffect(fakeModule('shape', 'exports.runFake = async () => ({ rows: 3 });'), 20_000, false, quiet);
  assert.match(badShape.error ?? '', /not an EffectResult/);
});

test('a benchmark that overruns is stopped, and its exit hooks run (so it cleans up)', async () => {
  const marker = path.join(dir, 'cleaned-up');
  const spec = fakeModule(
    'hang',
    `process.on('exit', () => require('fs').writeFileSync(${JSON.stringify(marker)}, 'yes'));
     exports.runFake = () => new Promise(() => setInterval(() => {}, 1000));`,
  );
  const started = Date.now();
  const outcome = await runEffect(spec, 1500, false, quiet);
  assert.equal(outcome.status, 'timed out');
  assert.ok(Date.now() - started < 10_000, 'SIGTERM should end it well before the SIGKILL fallback');
  assert.ok(existsSync(marker), 'exit hooks did not run');
});
