/**
 * Sample tuner: the smallest complete example of the plugin interface,
 * BPF and TypeScript in one folder (see README.md here). When a program
 * calls listen() with a backlog above net.core.somaxconn in its network
 * namespace, raise somaxconn there so its next listen() gets the queue it
 * asked for.
 */
// Types only (the SDK's; in this repository src/core/tuner.ts): a plugin gets everything it uses at run time from its context.
import type { TunableDeclaration, TunerDefinition } from 'bpftune-plugin-sdk';
import { ListenBacklogScenario } from './listen_backlog.contract';

const SOMAXCONN = { name: 'net.core.somaxconn', namespaced: true, values: 1 } satisfies TunableDeclaration;
const SOMAXCONN_CAP = 65535;

const listenBacklogTuner: TunerDefinition = {
  name: 'listen_backlog',
  description: 'Raises net.core.somaxconn when listen() asks for a longer backlog',
  tunables: [SOMAXCONN],
  scenarios: [
    {
      id: ListenBacklogScenario.TRUNCATED,
      name: 'listen backlog truncated',
      description: 'A listen() backlog exceeded net.core.somaxconn and was truncated; raise somaxconn so the accept queue can be as long as requested',
    },
  ],
  create: (ctx) => ({
    async event(event) {
      const [somaxconn = 0] = event.oldValues;
      const [backlog = 0] = event.newValues;
      // At least one learning-rate step, so a series of slightly longer backlogs does not mean a write each.
      const target = Math.min(SOMAXCONN_CAP, Math.max(backlog, ctx.learning.grow(somaxconn)));
      await ctx.set({
        tunable: SOMAXCONN.name,
        scenario: ListenBacklogScenario.TRUNCATED,
        netnsCookie: event.netnsCookie,
        values: [target],
        reason: `listen() backlog ${backlog} (pid ${event.pid}) above somaxconn ${somaxconn}`,
      });
    },
  }),
};

export default listenBacklogTuner;
