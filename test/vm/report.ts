/**
 * Turns the raw output of VM runs (test/vm/vm.sh: results.log from the guest's second serial
 * port, plus the host's timings) into one committed table per kernel and a matrix overview.
 * Usage: node dist/test/vm/report.js test/vm/results
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

interface TestFile {
  file: string;
  /** "not ok" lines of the file's output (the guest sends the output of failed files only). */
  failures: string[];
  rc: number;
  pass: number;
  fail: number;
  skip: number;
  seconds: number;
}

interface KernelRun {
  name: string;
  release: string;
  node: string;
  accel: string;
  image: string;
  bootSeconds: string;
  totalSeconds: string;
  suiteSeconds: string;
  support: string[];
  legacy: string[];
  tests: TestFile[];
  service: string[];
  done: boolean;
}

function read(file: string): string {
  return existsSync(file) ? readFileSync(file, 'utf8').replace(/\r/g, '') : '';
}

function field(line: string, key: string): string {
  return new RegExp(`(?:^| )${key}=("[^"]*"|\\S+)`).exec(line)?.[1]?.replace(/"/g, '') ?? '';
}

export function parseRun(dir: string, name: string): KernelRun {
  const lines = read(path.join(dir, 'results.log')).split('\n');
  const value = (prefix: string) => lines.find((l) => l.startsWith(prefix + ' '))?.slice(prefix.length + 1) ?? '?';
  const [boot = '?', total = '?'] = read(path.join(dir, 'times')).trim().split(' ');
  const tests = lines
    .map((l, i) => ({ l, i }))
    .filter(({ l }) => l.startsWith('TEST '))
    .map(({ l, i }) => ({
      file: l.split(' ')[1] ?? '?',
      failures: lines
        .slice(i + 1, lines.findIndex((x, j) => j > i && !x.startsWith('  ')) >>> 0)
        .filter((x) => /^ {2}\| not ok \d+ - /.test(x))
        .map((x) => x.replace(/^ {2}\| not ok \d+ - /, '')),
      rc: Number(field(l, 'rc')),
      pass: Number(field(l, 'pass')),
      fail: Number(field(l, 'fail')),
      skip: Number(field(l, 'skip')),
      seconds: Number(field(l, 'seconds')),
    }));
  const serviceStart = lines.findIndex((l) => l.startsWith('SERVICE '));
  const service = serviceStart < 0 ? [] : [lines[serviceStart] ?? '', ...lines.slice(serviceStart + 1).filter((l) => l.startsWith('  | ')).map((l) => l.slice(4))];
  return {
    name,
    release: value('KERNEL'),
    node: value('NODE'),
    accel: read(path.join(dir, 'accel')).trim() || '?',
    image: read(path.join(dir, 'image')).trim() || '?',
    bootSeconds: boot,
    totalSeconds: total,
    suiteSeconds: field(lines.find((l) => l.startsWith('SUMMARY ')) ?? '', 'suite_seconds') || '?',
    support: lines.filter((l) => l.startsWith('SUPPORT ')).map((l) => l.slice('SUPPORT '.length)),
    legacy: lines.filter((l) => l.startsWith('LEGACY')),
    tests,
    service,
    done: lines.some((l) => l.startsWith('VM-DONE')),
  };
}

const ACCEL: Record<string, string> = {
  kvm: 'KVM',
  tcg: 'TCG (software emulation: this host has no usable /dev/kvm)',
};

function totals(tests: TestFile[]): { pass: number; fail: number; skip: number } {
  return tests.reduce((t, f) => ({ pass: t.pass + f.pass, fail: t.fail + f.fail, skip: t.skip + f.skip }), { pass: 0, fail: 0, skip: 0 });
}

/** "tuner 'x': would use tp_btf, fentry (tp_btf/a, fentry/b)" -> row cells. */
function tunerRows(support: string[]): string[] {
  return support
    .map((l) => /^tuner '([^']+)': (.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => {
      const detail = /^(would use|cannot attach) ([^(]+?) \((.*?)\)(.*)$/.exec(m[2] ?? '');
      if (!detail) return `| ${m[1]} | ${m[2]} | |`;
      const state = detail[1] === 'would use' ? 'loads' : '**cannot attach**';
      return `| ${m[1]} | ${state}: ${detail[2]} | ${(detail[3] ?? '').split(', ').join('<br>')}${detail[4] ?? ''} |`;
    });
}

export function kernelReport(run: KernelRun): string {
  const t = totals(run.tests);
  const out = [
    `# bpftune on Debian 12, kernel ${run.release} (\`${run.name}\`)`,
    '',
    'Written by `test/vm/report.ts` from a run of `make test-vm KERNEL=' + run.name + '`; raw guest output in `raw/' + run.name + '/results.log`.',
    '',
    '| | |',
    '|---|---|',
    `| kernel | ${run.release} |`,
    `| guest node | ${run.node} (Debian 12's) |`,
    `| accelerator | ${ACCEL[run.accel] ?? run.accel} |`,
    `| image | ${run.image} |`,
    `| boot: qemu start to test unit running | ${run.bootSeconds} s |`,
    `| test files, one at a time | ${run.suiteSeconds} s |`,
    `| whole VM run, qemu start to power-off | ${run.totalSeconds} s |`,
    `| tests | ${t.pass} passed, ${t.fail} failed, ${t.skip} skipped, in ${run.tests.length} files${run.done ? '' : ' (**run did not finish**)'} |`,
    '',
    '## Tuners (`bpftune -S`)',
    '',
    '`-S` predicts from the attach-kind probes and each hook\'s target on this kernel; it does not run the verifier on every tuner. The test files below load them.',
    '',
    '| tuner | attach modes | programs |',
    '|---|---|---|',
    ...tunerRows(run.support),
    '',
    '```',
    ...run.support.filter((l) => !l.startsWith('tuner ')),
    '```',
    '',
    '## The daemon with -L (tcp_buffer only): loads the kprobe fallback',
    '',
    ...(run.legacy.length ? ['```', ...run.legacy, '```'] : ['Not run in this VM run.']),
    '',
    '## Test files',
    '',
    '| file | passed | failed | skipped | seconds |',
    '|---|---|---|---|---|',
    ...run.tests.map((f) => `| ${f.file.replace(/^dist\//, '')} | ${f.pass} | ${f.fail ? `**${f.fail}**` : 0} | ${f.skip} | ${f.seconds} |`),
    '',
    ...run.tests.flatMap((f) => f.failures.map((name) => `- failed in ${f.file.replace(/^dist\//, '')}: ${name}`)),
    '',
    '## Service test',
    '',
    ...(run.service.length ? ['```', ...run.service, '```'] : ['Not run: no .deb was in the payload (`make deb` had not produced one).']),
    '',
  ];
  return out.join('\n');
}

function main(resultsDir: string): number {
  const rawDir = path.join(resultsDir, 'raw');
  const runs = readdirSync(rawDir)
    .filter((d) => existsSync(path.join(rawDir, d, 'results.log')))
    .sort()
    .map((d) => parseRun(path.join(rawDir, d), d));
  const matrix = [
    '# VM matrix: bpftune on Debian 12 kernels',
    '',
    'One row per kernel; details in `<kernel>.md`. Produced by `make test-vm-matrix`.',
    '',
    '| run | kernel | accelerator | boot s | suite s | VM run s | passed | failed | skipped | service test |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  let failed = 0;
  for (const run of runs) {
    writeFileSync(path.join(resultsDir, `${run.name}.md`), kernelReport(run));
    const t = totals(run.tests);
    if (t.fail || !run.done) failed++;
    const service = run.service[0]?.replace(/^SERVICE /, '').replace(/ seconds=.*/, '') ?? 'not run';
    matrix.push(`| [${run.name}](${run.name}.md) | ${run.release} | ${run.accel} | ${run.bootSeconds} | ${run.suiteSeconds} | ${run.totalSeconds} | ${t.pass} | ${t.fail} | ${t.skip} | ${service} |`);
  }
  writeFileSync(path.join(resultsDir, 'vm-matrix.md'), matrix.join('\n') + '\n');
  process.stdout.write(matrix.join('\n') + '\n');
  return failed ? 1 : 0;
}

if (require.main === module) process.exit(main(process.argv[2] ?? 'test/vm/results'));
