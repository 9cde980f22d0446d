/**
 * sysctl tuner: notices when anyone but bpftune writes a sysctl a tuner
 * manages, and hands that namespace back to the administrator: the owning
 * tuners stop tuning there (and only there), and the log says who did it.
 * A core service: the daemon depends on it, so it loads whatever -a says.
 */
import { promises as fs } from 'node:fs';
import type { TunerDefinition } from '../../core/tuner';
import { SysctlEventData, SysctlScenario } from './sysctl.contract';

/** The writer's command line, or its comm when it has already exited (sysctl -w is quick). */
async function commandOf(pid: number, comm: string): Promise<string> {
  const cmdline = await fs.readFile(`/proc/${pid}/cmdline`).catch(() => undefined);
  if (!cmdline || cmdline.length === 0) return comm;
  return cmdline.toString('utf8').replace(/\0+$/, '').split('\0').join(' ');
}

const sysctlTuner: TunerDefinition<'reportExternalWrite'> = {
  name: 'sysctl',
  description: 'Stops tuning a sysctl in a namespace when someone else writes it there',
  service: true,
  abilities: ['reportExternalWrite'],
  tunables: [],
  scenarios: [{ id: SysctlScenario.WRITE, name: 'sysctl written by another program', description: 'An administrator or program changed a sysctl bpftune manages' }],
  create: (ctx) => ({
    async event(event) {
      const { name: sysctl, comm } = SysctlEventData.decode(event.data);
      ctx.log.debug(`pid ${event.pid} (${comm}) wrote ${sysctl} in netns cookie ${event.netnsCookie}`);
      ctx.reportExternalWrite({
        sysctl,
        netnsCookie: event.netnsCookie,
        pid: event.pid,
        command: await commandOf(event.pid, comm),
      });
    },
  }),
};

export default sysctlTuner;
