/**
 * Preloaded (NODE_OPTIONS=--require) into the daemon that bench/cpu-profile.ts
 * profiles. `node --cpu-prof` samples from the first instruction, and V8's
 * sampler interrupts the main thread with SIGPROF every sampling interval: the
 * BPF verifier gives up on a pending signal (EAGAIN), so the larger programs
 * (tcp_buffer, tcp_conn) never loaded under it. This starts the same profiler
 * through the inspector only after the daemon has loaded, and writes the
 * .cpuprofile when the process exits.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import * as path from 'node:path';

const PROFILE_DIR = process.env.BPFTUNE_BENCH_PROFILE_DIR;
const START_AFTER_MS = Number(process.env.BPFTUNE_BENCH_PROFILE_AFTER_MS ?? '0');
/** Sampling interval; a coarser one (BPFTUNE_BENCH_PROFILE_INTERVAL_US) where sampling itself is dear, as under TCG. */
const INTERVAL_US = Number(process.env.BPFTUNE_BENCH_PROFILE_INTERVAL_US) || 250;

if (PROFILE_DIR) {
  const session = new Session();
  session.connect();
  let started = false;
  // The in-process inspector answers synchronously, so this works in an 'exit' listener.
  setTimeout(() => {
    session.post('Profiler.enable', () =>
      session.post('Profiler.setSamplingInterval', { interval: INTERVAL_US }, () =>
        session.post('Profiler.start', (err) => {
          started = !err;
        }),
      ),
    );
  }, START_AFTER_MS).unref();
  process.on('exit', () => {
    if (!started) return;
    session.post('Profiler.stop', (err, result) => {
      if (!err) writeFileSync(path.join(PROFILE_DIR, `daemon-${process.pid}.cpuprofile`), JSON.stringify(result.profile));
    });
  });
}
