/**
 * Where bpftune keeps things (shared/compat.md); BPFTUNE_RUNDIR moves the run
 * directory and BPFTUNE_STATEDIR the state directory, for tests.
 */
import * as path from 'node:path';

export const DEFAULT_LOCAL_LIBDIR = '/usr/local/lib64/bpftune';

export function runDirectory(): string {
  return process.env.BPFTUNE_RUNDIR ?? '/var/run/bpftune';
}

export function defaultCgroupDirectory(): string {
  return path.join(runDirectory(), 'cgroupv2');
}

/** Survives restarts (unlike the run directory, a tmpfs): systemd's StateDirectory=bpftune. */
export function stateDirectory(): string {
  return process.env.BPFTUNE_STATEDIR ?? '/var/lib/bpftune';
}

export function stateFilePath(): string {
  return path.join(stateDirectory(), 'state.json');
}

export function serverPortFile(): string {
  return path.join(runDirectory(), 'server-port');
}

export function querySocketPath(): string {
  return path.join(runDirectory(), 'bpftune.sock');
}

/** The built-in tuners, compiled next to this file's directory (dist/src/tuners). */
export function builtinLibdir(): string {
  return path.resolve(__dirname, '..', 'tuners');
}

export function probeObjectPath(): string {
  return path.resolve(__dirname, '..', '..', 'bpf', 'probe.bpf.o');
}

export const VERSION = '0.1.0';
