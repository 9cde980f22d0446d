/**
 * netns: keeps the daemon's cookie -> namespace map current, so that a
 * change lands in the namespace where its event happened and state for dead
 * namespaces is dropped. Creation is seen by BPF; teardown has no tracepoint,
 * so a cheap liveness check runs on a slow timer (and a write to a vanished
 * namespace is detected when it fails). A core service: the daemon depends
 * on it, so it loads whatever -a says.
 */
import type { TunerDefinition } from '../../core/tuner';
import { NetnsScenario } from './netns.contract';

/** One readlink per known namespace: negligible even on hosts with hundreds of containers. */
const VERIFY_INTERVAL_MS = 5000;
/**
 * With no namespace but the daemon's own known there is nothing to verify;
 * the timer still runs this often in case one was found some other way than
 * the creation hooks (a tuner's event from a namespace made before start-up
 * is resolved by a rescan).
 */
const QUIET_INTERVAL_MS = 30_000;

const netnsTuner: TunerDefinition<'verifyNamespaces'> = {
  name: 'netns',
  description: 'Follows network namespaces being created and destroyed',
  service: true,
  abilities: ['verifyNamespaces'],
  tunables: [],
  // The reference's scenario name and description.
  scenarios: [{ id: NetnsScenario.CREATED, name: 'netns created', description: 'network namespace creation' }],
  create(ctx) {
    const verifier = ctx.every(
      VERIFY_INTERVAL_MS,
      async () => {
        await ctx.verifyNamespaces();
        return ctx.namespaces.all().some((ns) => !ns.global) ? undefined : 'quiet';
      },
      { quietIntervalMs: QUIET_INTERVAL_MS },
    );
    return {
      async event(event) {
        verifier.wake();
        if (ctx.namespaces.byCookie(event.netnsCookie)) return;
        const ns = await ctx.namespaces.seen(event.netnsCookie, event.netnsInum);
        ctx.log.debug(`pid ${event.pid} created netns cookie ${event.netnsCookie}${ns ? ` (${ns.path})` : ' (already gone)'}`);
        ctx.log.debug(`netns created (cookie ${event.netnsCookie})`);
      },
    };
  },
};

export default netnsTuner;
