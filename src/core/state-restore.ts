/**
 * At start, before any tuner loads: what the previous run's state file means
 * for this one.
 * - Another boot: the kernel started from its defaults; history only.
 * - This boot, the previous run had -R and did not finish (killed, crashed):
 *   restore every original whose tunable still holds what bpftune set (an
 *   administrator's later write wins).
 * - This boot otherwise: its changes are still in place, so their originals
 *   are carried over (summary, `-q rollback` and -R restore the true
 *   originals, not values bpftune itself set), and so are the takeovers.
 * A state file that cannot be read is moved aside and the daemon starts.
 */
import { errorText, type Logger } from './log';
import type { Namespace, NetnsRegistry } from './netns';
import { namespaceKey, validateState, type BpftuneState, type StateStore, type StoredChange, type StoredNamespace } from './state';
import { readJsonFile, removeStaleTemporaries } from './state-file';
import { formatSysctlValues, parseSysctlValues, sameValues, sysctlPath, type SysctlValue } from './sysctl-values';
import type { SysctlAccess, TunableRegistry } from './tunables';

export interface RestoreContext {
  store: StateStore;
  registry: TunableRegistry;
  namespaces: NetnsRegistry;
  sysctl: SysctlAccess;
  log: Logger;
}

interface ValueAccess {
  read(): Promise<SysctlValue[]>;
  write(values: readonly SysctlValue[]): Promise<void>;
}

function where(ns: Namespace): string {
  const key = namespaceKey(ns);
  return key === 'global' ? 'global ns' : key;
}

/** Restores one original if the tunable still holds a value bpftune set. */
async function restoreOriginal(ctx: RestoreContext, previous: BpftuneState, ns: Namespace, change: StoredChange, access: ValueAccess): Promise<void> {
  const name = `'${change.tunable}' in ${where(ns)}`;
  try {
    const now = await access.read();
    if (sameValues(now, change.original)) return;
    // previousSet: the earlier run may have died between writing its state and writing the tunable.
    if (!sameValues(now, change.lastSet) && !sameValues(now, change.previousSet)) {
      ctx.log.info(
        `Not restoring ${name}: it is (${formatSysctlValues(now)}), not the (${formatSysctlValues(change.lastSet)}) bpftune set, ` +
          'so someone changed it since; their value stays',
      );
      return;
    }
    await access.write(change.original);
    ctx.log.info(
      `Restored ${name} from (${formatSysctlValues(now)}) -> (${formatSysctlValues(change.original)}): ` +
        `bpftune (pid ${previous.pid}, run with -R) stopped before it could roll back`,
    );
  } catch (err) {
    const by = change.commands ? change.commands.original : `sysctl -w ${change.tunable}="${formatSysctlValues(change.original)}"`;
    ctx.log.error(`could not restore ${name} to (${formatSysctlValues(change.original)}): ${errorText(err)}; restore it by hand: ${by}`);
  }
}

async function restoreNamespace(ctx: RestoreContext, previous: BpftuneState, ns: Namespace, stored: StoredNamespace): Promise<void> {
  for (const change of stored.changes) {
    if (change.commands) {
      // Not a sysctl: only its tuner knows how to write it; done before that tuner's init.
      ctx.registry.restoreWhenDeclared(change.tunable, async (decl) => {
        await restoreOriginal(ctx, previous, ns, change, { read: () => decl.access!.read(ns, ctx.sysctl), write: (v) => decl.access!.write(ns, v, ctx.sysctl) });
      });
      continue;
    }
    const path = sysctlPath(change.tunable);
    const isString = typeof change.original[0] === 'string';
    await restoreOriginal(ctx, previous, ns, change, {
      read: async () => parseSysctlValues(await ctx.sysctl.read(ns, path), isString),
      write: (v) => ctx.sysctl.write(ns, path, formatSysctlValues(v)),
    });
  }
}

function liveNamespace(ctx: RestoreContext, stored: StoredNamespace): Namespace | undefined {
  if (stored.global) return ctx.namespaces.global;
  // Cookies are never reused within a boot: the same cookie is the same namespace.
  return ctx.namespaces.byCookie(BigInt(stored.cookie));
}

async function readPrevious(ctx: RestoreContext): Promise<BpftuneState | undefined> {
  const file = ctx.store.file;
  const stale = await removeStaleTemporaries(file).catch((err: unknown) => {
    ctx.log.warn(`could not clear unfinished state writes beside ${file}: ${errorText(err)}`);
    return [];
  });
  if (stale.length) ctx.log.info(`removed ${stale.length} temporary file(s) of state writes an earlier run did not finish (it was killed mid-write): ${stale.join(', ')}`);
  const result = await readJsonFile(file, validateState);
  switch (result.kind) {
    case 'none':
      ctx.log.debug(`no state file at ${file}: no earlier run to carry on from`);
      return undefined;
    case 'corrupt':
      ctx.log.error(
        `state file ${file} is ${result.reason}; ` +
          (result.movedTo ? `moved it to ${result.movedTo}` : `could not move it aside (${result.moveError})`) +
          '; starting without it: any changes an earlier run left in place are listed there, with their original values, to restore by hand',
      );
      return undefined;
    case 'ok':
      return result.value;
  }
}

export async function openState(ctx: RestoreContext): Promise<void> {
  const previous = await readPrevious(ctx);
  const { store, log } = ctx;
  if (previous) {
    const sameBoot = previous.bootId === store.snapshot.bootId;
    store.keepHistory(previous, sameBoot);
    if (!sameBoot) {
      log.info(`state file ${store.file} is from an earlier boot (${previous.bootId}): the kernel has its defaults again; kept for reporting only`);
    } else {
      const crashed = previous.rollback && !previous.finished;
      log.info(
        `state file ${store.file}: bpftune pid ${previous.pid} of this boot ${previous.finished ? 'exited cleanly' : 'did not exit cleanly'}` +
          (crashed ? ' before rolling back (-R): restoring what it changed' : previous.rollback ? ' and rolled back' : '; carrying on from its changes and takeovers'),
      );
      for (const stored of previous.namespaces) {
        const ns = liveNamespace(ctx, stored);
        if (!ns) {
          log.info(`state file: namespace ${stored.key} (cookie ${stored.cookie}) is gone; forgetting what bpftune did there`);
          continue;
        }
        if (crashed) await restoreNamespace(ctx, previous, ns, stored);
        // Changes of a run that rolled back, or whose originals were just restored, are no longer bpftune's.
        const changes = previous.rollback ? [] : stored.changes;
        for (const change of changes) ctx.registry.inherit(ns, change);
        for (const t of stored.takeovers) {
          ctx.registry.inheritTakeover(t.tuner, ns.cookie);
          log.info(`tuner '${t.tuner}' stays disabled in ${where(ns)} (cookie ${ns.cookie}): pid ${t.pid}, cmd '${t.command}' wrote '${t.sysctl}' at ${t.at}`);
        }
        store.adopt(ns, { changes, scenarios: stored.scenarios, takeovers: stored.takeovers });
      }
    }
  }
  // This run is on disk before it changes anything: if it dies now, the next start knows.
  store.markOpened();
  await store.flush();
}
