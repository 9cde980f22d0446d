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
 * Once the known namespaces have stayed the same for 30 s, they are checked
 * this often instead, until one is created (an event) or found gone: a
 * teardown on a quiet host is noticed up to 30 s late, which only delays
 * dropping its state (a write into it fails and rescans at once anyway).
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
    const knownCookies = () =>
      ctx.namespaces
        .all()
        .map((ns) => ns.cookie)
        .sort()
        .join(' ');
    const verifier = ctx.every(
      VERIFY_INTERVAL_MS,
      async () => {
        const before = knownCookies();
        await ctx.verifyNamespaces();
        return knownCookies() === before ? 'quiet' : undefined;
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
