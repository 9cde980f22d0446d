/**
 * Stand-ins that record what the code under test did, for unit tests of the
 * core's pure logic: a logger that keeps lines, a program switch that keeps
 * its attaches and detaches.
 */
import type { Logger } from '../../src/core/log';
import type { ProgramSwitch } from '../../src/core/strategy';

/** Errors as "error: ...", warnings as "warn: ...", info as is; debug dropped. */
export function recordingLog(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const log: Logger = {
    debugEnabled: false,
    error: (m) => lines.push(`error: ${m}`),
    warn: (m) => lines.push(`warn: ${m}`),
    info: (m) => lines.push(m),
    debug: () => undefined,
  };
  return { log, lines };
}

export interface RecordingProgramsOptions {
  /** Programs attached at first (default: all loaded). */
  attached?: Iterable<string>;
  /** The line recorded for a call (default "attach NAME" / "detach NAME"). */
  describe?: (call: 'attach' | 'detach', name: string) => string;
  /** Throws instead of attaching when it returns true. */
  refuseAttach?: () => boolean;
}

export function recordingPrograms(loaded: string[], options: RecordingProgramsOptions = {}): { programs: ProgramSwitch; attached: Set<string>; calls: string[] } {
  const attached = new Set(options.attached ?? loaded);
  const calls: string[] = [];
  const describe = options.describe ?? ((call, name) => `${call} ${name}`);
  const programs: ProgramSwitch = {
    loaded: () => loaded,
    attached: (n) => attached.has(n),
    attach: (n) => {
      if (options.refuseAttach?.()) throw new Error('attach refused');
      calls.push(describe('attach', n));
      attached.add(n);
    },
    detach: (n) => {
      calls.push(describe('detach', n));
      attached.delete(n);
    },
  };
  return { programs, attached, calls };
}
