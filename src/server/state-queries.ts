/**
 * Queries about what bpftune keeps and would do: advice (advisory mode), the
 * sysctl.d export, the state file, and `release`, by which an administrator
 * hands a tunable they took over back to bpftune.
 */
import * as os from 'node:os';
import { adviceText } from '../core/advice';
import { exportEntries, sysctlDropIn } from '../core/export';
import type { Namespace } from '../core/netns';
import type { Query, QueryCaller } from './queries';
import type { DaemonView } from './view';

function namespaceNamed(daemon: DaemonView, word: string | undefined): Namespace {
  if (word === undefined || word === 'global') return daemon.namespaces.global;
  const found = /^\d+$/.test(word)
    ? daemon.namespaces.byCookie(BigInt(word))
    : daemon.namespaces.all().find((n) => n.name === word);
  if (!found) throw new Error(`no network namespace '${word}': give 'global', a name from 'ip netns list', or a cookie from -q tuners`);
  return found;
}

async function release(daemon: DaemonView, args: string[], caller: QueryCaller | undefined): Promise<string> {
  if (!caller?.privileged) {
    return "error: 'release' changes what bpftune tunes: ask as root over the Unix socket (bpftune -q without -p)\n";
  }
  const [what, where] = args;
  if (!what) return "error: usage: release TUNABLE|TUNER [global|NETNS-NAME|COOKIE]\n";
  const ns = namespaceNamed(daemon, where);
  const { tuners, removed } = await daemon.release(what, ns);
  const names = [...new Set([...tuners, ...removed])];
  if (!names.length) return `nothing to release: no tuner managing '${what}' is disabled in netns cookie ${ns.cookie}\n`;
  const line = `administrator handed '${what}' back: tuner(s) ${names.map((n) => `'${n}'`).join(', ')} tune in netns cookie ${ns.cookie} again`;
  daemon.log(line);
  return `${line}\n`;
}

export function stateQueries(daemon: DaemonView): Map<string, Query> {
  const queries = new Map<string, Query>();
  const add = (name: string, description: string, run: (args: string[], caller?: QueryCaller) => Promise<string> | string) =>
    queries.set(name, { description, run: async (args = [], caller) => run(args, caller) });
  const advice = () => daemon.advice() ?? [];
  const entries = () => exportEntries(daemon.changes(), advice());

  add('advice', 'advisory mode (--advise): what bpftune would change, why, how often and when', () =>
    daemon.advice() ? adviceText(advice()) : '# Not in advisory mode: bpftune makes its changes (see summary); start it with --advise for advice\n',
  );
  add('jadvice', 'advice as JSON', () => `${JSON.stringify({ advisory: daemon.advice() !== undefined, advice: advice() })}\n`);
  add('sysctl.d', 'a drop-in for /etc/sysctl.d of what bpftune set (or would set) in the global namespace', () =>
    sysctlDropIn(entries(), os.hostname(), new Date()),
  );
  add('jexport', 'the sysctl.d export as JSON', () =>
    `${JSON.stringify({ host: os.hostname(), exportedAt: new Date().toISOString(), namespace: 'global', advisory: daemon.advice() !== undefined, entries: entries() })}\n`,
  );
  add('jstate', 'the state kept across restarts (state.json in the state directory) as JSON', () => `${JSON.stringify(daemon.stateSnapshot())}\n`);
  add('release', "hand a tunable an administrator took over back to bpftune: 'release TUNABLE|TUNER [global|NETNS|COOKIE]' (root)", (args, caller) =>
    release(daemon, args, caller),
  );
  return queries;
}
