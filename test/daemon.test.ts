/**
 * The daemon as an operator meets it: -S, bad input, queries, summary on
 * SIGTERM, plugins that are broken or rejected by the verifier, and plugins
 * added and removed while it runs.
 */
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { chmodSync, cpSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { DaemonProcess, REPO_ROOT, SAMPLES_LIBDIR, runBpftune, stopAllDaemons } from './support/daemon';
import { cleanupNamespaces, createNamespace, removeStaleNamespaces, setSysctlIn, sysctlIn } from './support/netns';
import { listenWithBacklog } from './support/listen';
import { trustedTempDir } from './support/trusted-dir';
import { SEND_TRACEPOINT_SAMPLED } from '../src/tuners/tcp_buffer/test-net';

const tempDir = () => trustedTempDir('lib');

before(removeStaleNamespaces);
after(async () => {
  await stopAllDaemons();
  cleanupNamespaces();
});

test('-S reports full support and per-netns policy on this kernel, and each tuner\'s attach mode', () => {
  const r = runBpftune(['-S', '-l', SAMPLES_LIBDIR]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^bpftune works fully$/m);
  assert.match(r.stdout, /^bpftune supports per-netns policy \(via netns cookie\)$/m);
  // Refused on this machine's 6.18; supported on 6.1 and 6.12 (the VM matrix).
  assert.match(r.stdout, /^attach kind fentry: (supported|not supported \(.+\))$/m);
  assert.match(r.stdout, /^tuner 'sysctl': would use cgroup \(cgroup\/sysctl\)$/m);
  assert.match(r.stdout, /^tuner 'netns': would use tp_btf, tracepoint/m);
  assert.match(r.stdout, /^tuner 'listen_backlog': would use tracepoint \(tracepoint\/syscalls\/sys_enter_listen\)$/m);
  // A sampled hook says so: tcp_buffer's send tracepoint (6.18); its fentry and kprobe fallbacks are not sampled (tcp_buffer's index.ts).
  if (!SEND_TRACEPOINT_SAMPLED) {
    assert.doesNotMatch(r.stdout, /tcp_buffer_snd\S* (not )?sampled/);
    return;
  }
  assert.match(r.stdout, /^tuner 'tcp_buffer': would use .*; tcp_buffer_snd sampled: attached 300 ms of every 15 s \(or of a longer period where attaching and detaching it cost more than 0\.01 % of a core\)$/m);
  // ... under the settings a daemon started the same way would run by.
  const period = runBpftune(['-S'], undefined, { BPFTUNE_HOOK_PERIOD_MS: '4000' });
  assert.match(period.stdout, /^tuner 'tcp_buffer': would use .*; tcp_buffer_snd sampled: attached 300 ms of every 4 s$/m);
  const off = runBpftune(['-S'], undefined, { BPFTUNE_HOOK_SAMPLING: 'off' });
  assert.match(off.stdout, /^tuner 'tcp_buffer': would use .*; tcp_buffer_snd not sampled, attached all the time \(BPFTUNE_HOOK_SAMPLING=off\)$/m);
  // The per-read receive hook of kernels before 6.16, taken here by leaving out the newer one: named, not sampled.
  const perRead = runBpftune(['-S'], undefined, { BPFTUNE_DISABLE_PROGRAMS: 'tcp_buffer_rcv_grow' });
  assert.match(
    perRead.stdout,
    /^tuner 'tcp_buffer': would use .*tp_btf\/tcp_rcv_space_adjust.*; left out tcp_buffer_rcv_grow \(BPFTUNE_DISABLE_PROGRAMS\); tcp_buffer_snd sampled: attached 300 ms of every 15 s \(or of a longer period .*\)$/m,
  );
});

test('bad input: unknown option, learning rate out of range, query with no daemon', () => {
  const unknown = runBpftune(['--bogus']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /^unrecognized option '--bogus'$/m);
  assert.match(unknown.stderr, /Usage: bpftune/);

  const rate = runBpftune(['-r', '9']);
  assert.equal(rate.code, 1);
  assert.equal(rate.stderr, 'values 0-4 are supported\n');

  const runDir = tempDir();
  const q = runBpftune(['-q', 'status'], runDir);
  assert.equal(q.code, 1);
  assert.equal(q.stderr.trim().split('\n').length, 1, 'one line');
  assert.match(q.stderr, /no bpftune daemon is running/);
});

test('-V, -h and -P answer without a daemon', () => {
  assert.match(runBpftune(['-V']).stdout, /^bpftune v\d+\.\d+\.\d+$/m);
  assert.match(runBpftune(['-h']).stdout, /--learning_rate N/);
  assert.equal(runBpftune(['-P']).stdout.trim(), path.join(REPO_ROOT, 'dist', 'src', 'tuners'));
});

test('every query answers, the summary is printed on SIGTERM, and nothing is left behind', async () => {
  const ns = createNamespace();
  setSysctlIn(ns, 'net.core.somaxconn', '128');
  const daemon = new DaemonProcess(['-l', SAMPLES_LIBDIR, '-a', 'listen_backlog']);
  await daemon.started();
  listenWithBacklog(ns, 200);
  await daemon.waitFor(/change net\.core\.somaxconn from \(128\) -> \(200\)/);

  const help = daemon.query('help');
  assert.equal(help.code, 0);
  for (const q of ['help', 'tuners', 'tunables', 'jtunables', 'summary', 'status', 'jstatus', 'rollback', 'advice', 'jadvice', 'sysctl.d', 'jexport', 'jstate']) {
    assert.match(help.stdout, new RegExp(`^${q} `, 'm'));
    const r = daemon.query(q);
    assert.equal(r.code, 0, `${q}: ${r.stderr}`);
    assert.ok(r.stdout.length > 0, `${q} answered`);
  }
  assert.match(daemon.query('tuners').stdout, /^tuner 'sysctl': active \(cgroup\)/m);
  assert.match(daemon.query('tunables').stdout, /^net\.core\.somaxconn\s+listen_backlog\s+per-netns\s+\d+/m);
  const jt = JSON.parse(daemon.query('jtunables').stdout) as Array<{ name: string; tuner: string }>;
  assert.ok(jt.some((t) => t.name === 'net.core.somaxconn' && t.tuner === 'listen_backlog'));
  assert.match(daemon.query('summary').stdout, /# sysctl 'net\.core\.somaxconn' changed from \(128 \) -> \(200 \)/);
  assert.match(daemon.query('rollback').stdout, /sysctl -w net\.core\.somaxconn="128"/);
  const status = JSON.parse(daemon.query('jstatus').stdout) as {
    pid: number;
    changes: number;
    changeStepsUs: Record<'read' | 'state' | 'write', { p50: number | null; samples: number }>;
  };
  assert.equal(status.pid, daemon.pid);
  assert.equal(status.changes, 1);
  // The one change's steps, each timed: reading the old value, the state file's write, the value's write.
  for (const step of ['read', 'state', 'write'] as const) {
    assert.equal(status.changeStepsUs[step].samples, 1, step);
    assert.ok((status.changeStepsUs[step].p50 ?? -1) >= 0, step);
  }
  assert.match(daemon.query('status').stdout, /^change steps p50\/p99 us: read \d+\/\d+, state \d+\/\d+, write \d+\/\d+$/m);
  assert.match(daemon.query('nonsense').stdout, /unknown query 'nonsense'/);

  assert.equal(await daemon.stop('SIGTERM'), 0);
  assert.match(daemon.log, /# Summary: scenario 'listen backlog truncated' occurred 1 times for tunable 'net\.core\.somaxconn' in non-global ns/);
  assert.match(daemon.log, /# To replicate this change on another system, run the following as a privileged user in a terminal:\nip netns exec \S+ sysctl -w net\.core\.somaxconn="200 "/);
  assert.match(daemon.log, /bpftune: stopped/);
  // Without -R the change stays: it was made to be kept.
  assert.equal(sysctlIn(ns, 'net.core.somaxconn'), '200');
});

test('broken plugins are logged and skipped; the others keep working', async () => {
  const libdir = tempDir();
  cpSync(path.join(SAMPLES_LIBDIR, 'listen_backlog'), path.join(libdir, 'listen_backlog'), { recursive: true });
  cpSync(path.join(REPO_ROOT, 'dist', 'test', 'fixtures', 'verifier_reject'), path.join(libdir, 'verifier_reject'), { recursive: true });
  mkdirSync(path.join(libdir, 'syntax_error'));
  writeFileSync(path.join(libdir, 'syntax_error', 'index.js'), 'module.exports = {{;\n');
  mkdirSync(path.join(libdir, 'bad_shape'));
  writeFileSync(path.join(libdir, 'bad_shape', 'index.js'), "module.exports = { name: 'Bad Name', tunables: 3 };\n");
  mkdirSync(path.join(libdir, 'corrupt_object'));
  writeFileSync(
    path.join(libdir, 'corrupt_object', 'index.js'),
    "module.exports = { name: 'corrupt_object', description: 'fixture', tunables: [], scenarios: [], create: () => ({}) };\n",
  );
  writeFileSync(path.join(libdir, 'corrupt_object', 'corrupt_object.bpf.o'), 'not an ELF file');
  mkdirSync(path.join(libdir, 'writable'));
  writeFileSync(path.join(libdir, 'writable', 'index.js'), "module.exports = {};\n");
  chmodSync(path.join(libdir, 'writable'), 0o777);

  const ns = createNamespace();
  setSysctlIn(ns, 'net.core.somaxconn', '128');
  const daemon = new DaemonProcess(['-l', libdir, '-R']);
  await daemon.started();
  assert.match(daemon.log, /tuner 'verifier_reject': load BPF object failed: .*bpf_object__load.*[\s\S]*invalid mem access 'map_value_or_null'[\s\S]*bpftune carries on without it/);
  assert.match(daemon.log, /syntax_error: cannot load .*index\.js: Unexpected token/);
  assert.match(daemon.log, /bad_shape: cannot load .*not a valid tuner definition: name must be a lowercase identifier/);
  assert.match(daemon.log, /tuner 'corrupt_object': open BPF object failed: .*corrupt_object\.bpf\.o[\s\S]*?bpftune carries on without it/);
  assert.match(daemon.log, /refusing untrusted plugin '.*writable': tuner directory .* is writable by group or others \(mode 777\)/);
  // Every built-in tuner, then of the plugins only the good one (built-ins are added as they are written).
  const builtins = readdirSync(path.join(REPO_ROOT, 'dist', 'src', 'tuners')).sort();
  const loaded = /\d+ tuners loaded \(([^)]*)\)/.exec(daemon.log)?.[1]?.split(', ') ?? [];
  assert.deepEqual([...loaded.slice(0, -1)].sort(), builtins, `loaded: ${loaded.join(', ')}`);
  assert.equal(loaded.at(-1), 'listen_backlog');

  listenWithBacklog(ns, 300);
  await daemon.waitFor(/change net\.core\.somaxconn from \(128\) -> \(300\)/);
  assert.equal(await daemon.stop(), 0);
});

test('a plugin added while running is loaded, and unloaded when removed', async () => {
  const libdir = tempDir();
  // Set before the daemon starts: a write while it runs hands the namespace to the administrator.
  const ns = createNamespace();
  setSysctlIn(ns, 'net.core.somaxconn', '128');
  const daemon = new DaemonProcess(['-l', libdir, '-R']);
  await daemon.started();
  assert.doesNotMatch(daemon.query('tuners').stdout, /listen_backlog/);

  cpSync(path.join(SAMPLES_LIBDIR, 'listen_backlog'), path.join(libdir, 'listen_backlog'), { recursive: true });
  await daemon.waitFor(/tuner 'listen_backlog' loaded/);
  listenWithBacklog(ns, 400);
  await daemon.waitFor(/change net\.core\.somaxconn from \(128\) -> \(400\)/);

  rmSync(path.join(libdir, 'listen_backlog'), { recursive: true });
  await daemon.waitFor(/tuner 'listen_backlog' was removed .*; unloading it/);
  assert.doesNotMatch(daemon.query('tuners').stdout, /listen_backlog/);
  assert.equal(await daemon.stop(), 0);
});

test('a second daemon refuses to start while one is running', async () => {
  const daemon = new DaemonProcess(['-R']);
  await daemon.started();
  const second = runBpftune(['-s'], daemon.runDir);
  assert.equal(second.code, 1);
  assert.match(second.stderr, /bpftune is already running/);
  assert.equal(await daemon.stop(), 0);
});
