/**
 * Metrics end to end, against a real Prometheus server and node_exporter
 * (Debian's packages, run on 127.0.0.1 with temporary data directories):
 * the daemon grows tcp_rmem in a namespace and Prometheus sees the change
 * through both exposition paths; every dashboard panel's query returns data;
 * promtool finds nothing wrong with a scrape; and the series of 200
 * namespaces go when the namespaces do.
 */
import { closeAllLinks, createEmulatedLink } from '../../test/support/link-emulator';
import { after, afterEach, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { DaemonProcess, REPO_ROOT, SAMPLES_LIBDIR, stopAllDaemons } from '../../test/support/daemon';
import { cleanupNamespaces, createNamespace, deleteNamespace, removeStaleNamespaces, setSysctlIn } from '../../test/support/netns';
import { listenWithBacklog } from '../../test/support/listen';
import { startNodeExporter, startPrometheus, stopAllServers } from '../../test/support/prometheus';
import { runIperfClient, startIperfServer } from '../tuners/tcp_buffer/test-net';

const tempDirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bpftune-test-metrics-'));
  tempDirs.push(dir);
  return dir;
}

before(removeStaleNamespaces);
afterEach(async () => {
  await stopAllServers();
  await stopAllDaemons();
});
after(async () => {
  await stopAllServers();
  await stopAllDaemons();
  await closeAllLinks();
  cleanupNamespaces();
  for (const d of tempDirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function metricsPort(daemon: DaemonProcess): Promise<number> {
  return Number((await daemon.waitFor(/metrics: serving http:\/\/127\.0\.0\.1:(\d+)\/metrics/))[1]);
}

async function scrape(port: number, daemon?: DaemonProcess): Promise<string> {
  // A connection per scrape, as a scraper that is not in a hurry makes them.
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`scrape answered ${res.statusCode}: ${text}`))));
    });
    req.on('error', (err) => {
      const tail = daemon?.log.split('\n').filter((l) => !/^(Scenario|Due to|pid )/.test(l)).slice(-8).join('\n');
      reject(new Error(`scraping 127.0.0.1:${port} failed: ${err.message}; daemon log ends:\n${tail}`));
    });
  });
}

interface DashboardTarget {
  expr: string;
}
interface Dashboard {
  uid: string;
  panels: Array<{ title: string; datasource: { uid: string }; targets: DashboardTarget[] }>;
  templating: { list: Array<{ name: string }> };
}

/** Each panel query with the dashboard variables set as Grafana would for "All" and a wide rate window. */
function dashboardQueries(): Array<{ panel: string; expr: string }> {
  const dashboard = JSON.parse(readFileSync(path.join(REPO_ROOT, 'dashboards', 'bpftune.json'), 'utf8')) as Dashboard;
  assert.equal(dashboard.uid, 'bpftune');
  assert.deepEqual(dashboard.templating.list.map((v) => v.name), ['datasource', 'instance', 'tunable']);
  return dashboard.panels.flatMap((p) => {
    assert.equal(p.datasource.uid, '${datasource}', `${p.title}: panels use the data source variable, so the dashboard provisions anywhere`);
    return p.targets.map((t) => ({
      panel: p.title,
      expr: t.expr.replace(/\$instance/g, '.*').replace(/\$tunable/g, '.*').replace(/\$__rate_interval/g, '5m'),
    }));
  });
}

test('Prometheus sees tcp_rmem grow in a namespace, over HTTP and through the node_exporter textfile; every dashboard panel has data', async () => {
  const textfiles = tempDir();
  // A 20 ms path: on a bare veth the path carries far less per round trip than the limit, so tcp_rmem does not grow.
  // after() closes it: its forwarder would keep this test file's process alive.
  const pair = await createEmulatedLink({ rttMs: 20 });
  setSysctlIn(pair.server, 'net.ipv4.tcp_rmem', '4096 65536 131072');
  // The change verifier's verdict after the test: the 3 s run ending must not undo the growth.
  const daemon = new DaemonProcess(['-a', 'tcp_buffer', '-R', '--metrics', '127.0.0.1:0', '--metrics-textfile', textfiles], { env: { BPFTUNE_VERIFY_SETTLE_MS: '600000' } });
  await daemon.started();
  const port = await metricsPort(daemon);
  const exporter = await startNodeExporter(textfiles);
  const prometheus = await startPrometheus({ bpftune: `127.0.0.1:${port}`, node: `127.0.0.1:${exporter.port}` });

  const server = startIperfServer(pair.server);
  try {
    await runIperfClient(pair.client, pair.serverAddr4, 3);
  } finally {
    server.stop();
  }
  await daemon.waitFor(/change net\.ipv4\.tcp_rmem\(min default max\) from \(4096 65536 131072\) -> \(4096 65536 \d+\)/);
  // An administrator's write in the other namespace: tcp_buffer stands down there.
  setSysctlIn(pair.client, 'net.ipv4.tcp_rmem', '4096 131072 262144');
  await daemon.waitFor(/disabling 'tcp_buffer' for namespace cookie \d+/);

  const changed = `bpftune_changes_total{job="bpftune", tunable="net.ipv4.tcp_rmem", netns="${pair.server}"}`;
  const [series] = await prometheus.waitFor(changed, (v) => v[0] > 0);
  assert.equal(series.metric.tuner, 'tcp_buffer');
  assert.equal(series.metric.scenario, 'need to increase TCP buffer size(s)');
  const max = await prometheus.waitFor(`bpftune_tunable_value{job="bpftune", tunable="net.ipv4.tcp_rmem", netns="${pair.server}", index="max"}`, (v) => v[0] > 131072);
  assert.ok(Number(max[0].value[1]) > 131072);
  await prometheus.waitFor(`bpftune_tuner_state{job="bpftune", tuner="tcp_buffer", netns="${pair.client}", state="manual"}`, (v) => v[0] === 1);
  // The textfile is rewritten every 15 s: the change shows there within one period.
  await prometheus.waitFor(changed.replace('job="bpftune"', 'job="node"'), (v) => v[0] > 0, 40_000);

  for (const { panel, expr } of dashboardQueries()) {
    const result = await prometheus.query(expr);
    assert.ok(result.length > 0, `dashboard panel '${panel}': '${expr}' returned no series`);
  }
  await prometheus.stop();
  await exporter.stop();

  // promtool: no problems in a scrape, nor in the textfile.
  for (const text of [await scrape(port), readFileSync(path.join(textfiles, 'bpftune.prom'), 'utf8')]) {
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(`${check.stdout}${check.stderr}`, '', 'promtool check metrics prints no problems');
    assert.equal(check.status, 0);
  }
  assert.equal(await daemon.stop(), 0);
  assert.deepEqual(
    spawnSync('ls', ['-A', textfiles], { encoding: 'utf8' }).stdout,
    '',
    'the textfile is removed when the daemon stops, so node_exporter does not report a stopped daemon as current',
  );
});

/*
 * listen() with a backlog in each namespace from one process (setns(2) through
 * ctypes: Python 3.11 has no os.setns), since starting a process per namespace
 * takes seconds each on a loaded 2-CPU machine.
 */
const LISTEN_IN_EACH = `
import ctypes, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
backlog = int(sys.argv[1])
for name in sys.argv[2:]:
    with open('/var/run/netns/' + name) as f:
        if libc.setns(f.fileno(), 0x40000000) != 0:  # CLONE_NEWNET
            sys.exit('setns ' + name + ': errno ' + str(ctypes.get_errno()))
    s = socket.socket()
    s.listen(backlog)
    s.close()
`;

function listenInEach(names: string[], backlog: number): void {
  const r = spawnSync('python3', ['-c', LISTEN_IN_EACH, String(backlog), ...names], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
}

/** Series of bpftune's own metrics (the client library's process and Node.js series vary with GC kinds seen, not with namespaces). */
function ownSeries(text: string): string[] {
  return text.split('\n').filter((l) => l.startsWith('bpftune_') && !/^bpftune_(process|nodejs)_/.test(l));
}

/** Scrapes until `done` accepts the series (namespaces are noticed gone within the netns tuner's 5 s check); returns the last. */
async function waitForSeries(daemon: DaemonProcess, port: number, done: (lines: string[]) => boolean, timeoutMs = 40_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const lines = ownSeries(await scrape(port, daemon));
    if (done(lines) || Date.now() > deadline) return lines;
    await new Promise((r) => setTimeout(r, 500));
  }
}

test('series of 200 namespaces, changed and taken over, go when the namespaces do', async () => {
  const daemon = new DaemonProcess(['-l', SAMPLES_LIBDIR, '-a', 'listen_backlog', '--metrics', '127.0.0.1:0']);
  await daemon.started();
  const port = await metricsPort(daemon);
  // One namespace through the whole cycle first, so that every per-tuner series (the handling-time histogram's) exists already.
  const warmup = createNamespace();
  listenWithBacklog(warmup, 5000);
  await daemon.waitFor(/change net\.core\.somaxconn from \(4096\) -> \(\d+\)/);
  setSysctlIn(warmup, 'net.core.somaxconn', '4096');
  await daemon.waitFor(/disabling 'listen_backlog' for namespace cookie/);
  deleteNamespace(warmup);
  await waitForSeries(daemon, port, (lines) => !lines.some((l) => l.includes(`netns="${warmup}"`)));
  const baseline = ownSeries(await scrape(port));

  const names = Array.from({ length: 200 }, () => createNamespace());
  listenInEach(names, 5000);
  // Every 10th namespace taken over by an administrator.
  for (const ns of names.filter((_, i) => i % 10 === 0)) setSysctlIn(ns, 'net.core.somaxconn', '4096');
  const peak = await waitForSeries(daemon, port, (lines) => {
    const changedIn = new Set(lines.filter((l) => l.startsWith('bpftune_changes_total')).map((l) => /netns="([^"]+)"/.exec(l)?.[1]));
    const manualIn = lines.filter((l) => l.startsWith('bpftune_tuner_state') && /state="manual"\} 1$/.test(l)).length;
    return names.every((n) => changedIn.has(n)) && manualIn >= 20;
  });
  for (const ns of names) {
    assert.ok(peak.some((l) => l.startsWith(`bpftune_changes_total{`) && l.includes(`netns="${ns}"`)), `changes counted in ${ns}`);
    assert.ok(peak.some((l) => l.startsWith(`bpftune_tunable_value{tunable="net.core.somaxconn",netns="${ns}"`)), `somaxconn value of ${ns}`);
  }
  assert.ok(peak.length >= baseline.length + 400 + 20 * 3, `${peak.length} series at the peak, ${baseline.length} before`);

  for (const ns of names) deleteNamespace(ns);
  const now = await waitForSeries(daemon, port, (lines) => lines.length <= baseline.length);
  const labelSets = (lines: string[]) => lines.map((l) => l.replace(/ \S+$/, '')).sort();
  assert.deepEqual(labelSets(now), labelSets(baseline), 'the same series as before the namespaces existed');
  assert.equal(await daemon.stop(), 0);
});
