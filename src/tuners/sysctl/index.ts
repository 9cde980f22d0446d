/**
 * sysctl tuner: notices when anyone but bpftune writes a sysctl a tuner
 * manages, and hands that namespace back to the administrator: the owning
 * tuners stop tuning there (and only there), and the log says who did it.
 */
import { promises as fs } from 'node:fs';
import { dataString } from '../../core/event';
import type { TunerDefinition } from '../../core/tuner';

// Offsets from sysctl.h.
const SYSCTL_NAME_LEN = 96;
const SYSCTL_COMM_OFFSET = 96;
const SYSCTL_COMM_LEN = 16;

/** The writer's command line, or its comm when it has already exited (sysctl -w is quick). */
async function commandOf(pid: number, comm: string): Promise<string> {
  const cmdline = await fs.readFile(`/proc/${pid}/cmdline`).catch(() => undefined);
  if (!cmdline || cmdline.length === 0) return comm;
  return cmdline.toString('utf8').replace(/\0+$/, '').split('\0').join(' ');
}

const sysctlTuner: TunerDefinition = {
  name: 'sysctl',
  description: 'Stops tuning a sysctl in a namespace when someone else writes it there',
  tunables: [],
  scenarios: [{ id: 0, name: 'sysctl written by another program', description: 'An administrator or program changed a sysctl bpftune manages' }],
  async event(event, ctx) {
    const sysctl = dataString(event.data, 0, SYSCTL_NAME_LEN);
    const comm = dataString(event.data, SYSCTL_COMM_OFFSET, SYSCTL_COMM_LEN);
    ctx.log.debug(`pid ${event.pid} (${comm}) wrote ${sysctl} in netns cookie ${event.netnsCookie}`);
    ctx.reportExternalWrite({
      sysctl,
      netnsCookie: event.netnsCookie,
      pid: event.pid,
      command: await commandOf(event.pid, comm),
    });
  },
};

export default sysctlTuner;
