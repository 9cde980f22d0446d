/**
 * A daemon run with -s whose stderr reader goes away (its terminal closed, or
 * the pipe's reader was killed) keeps running on syslog and still stops
 * cleanly on SIGTERM: it used to spin on failed writes and need SIGKILL.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { BPFTUNE } from './support/daemon';
import { trustedTempDir } from './support/trusted-dir';

function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

test('a daemon whose stderr is gone keeps running quietly and stops on SIGTERM', async () => {
  const runDir = trustedTempDir('run');
  const child = spawn(BPFTUNE, ['-s', '-d', '-R', '-a', 'netns', '-a', 'sysctl'], {
    env: { ...process.env, BPFTUNE_RUNDIR: runDir, BPFTUNE_STATEDIR: `${runDir}/state` },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    await new Promise<void>((resolve, reject) => {
      let seen = '';
      const timer = setTimeout(() => reject(new Error(`no start within 60 s:\n${seen}`)), 60_000);
      child.stderr?.on('data', (chunk: Buffer) => {
        seen += chunk.toString();
        if (/tuners loaded/.test(seen)) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    // The reader goes away; debug logging (-d) keeps the daemon writing.
    child.stderr?.destroy();
    await new Promise((r) => setTimeout(r, 1000));
    const before = cpuTicks(child.pid ?? 0);
    await new Promise((r) => setTimeout(r, 3000));
    const spent = cpuTicks(child.pid ?? 0) - before;
    // 3 s at 100 ticks/s: a spinning daemon burns most of them, an idle one a handful.
    assert.ok(spent < 60, `the daemon used ${spent} of 300 clock ticks in 3 s with its stderr gone`);
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    assert.equal(await exited, 0, 'SIGTERM stopped it cleanly');
    clearTimeout(timer);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await exited;
  }
});
