/**
 * netns tuner: keeps the daemon's cookie -> namespace map current, so that a
 * change lands in the namespace where its event happened and state for dead
 * namespaces is dropped. Creation is seen by BPF; teardown has no tracepoint,
 * so a cheap liveness check runs on a slow timer (and a write to a vanished
 * namespace is detected when it fails).
 */
import type { TunerDefinition } from '../../core/tuner';

/** One readlink per known namespace: negligible even on hosts with hundreds of containers. */
const VERIFY_INTERVAL_MS = 5000;

const netnsTuner: TunerDefinition = {
  name: 'netns',
  description: 'Follows network namespaces being created and destroyed',
  tunables: [],
  // The reference's scenario name and description.
  scenarios: [{ id: 0, name: 'netns created', description: 'network namespace creation' }],
  init(ctx) {
    ctx.every(VERIFY_INTERVAL_MS, () => ctx.namespaces.verify());
  },
  async event(event, ctx) {
    if (ctx.namespaces.byCookie(event.netnsCookie)) return;
    const ns = await ctx.namespaces.seen(event.netnsCookie, event.netnsInum);
    ctx.log.debug(`pid ${event.pid} created netns cookie ${event.netnsCookie}${ns ? ` (${ns.path})` : ' (already gone)'}`);
    ctx.log.debug(`netns created (cookie ${event.netnsCookie})`);
  },
};

export default netnsTuner;
