/**
 * The reference's first two support lines ("bpftune works fully", per-netns
 * policy), which -S prints and the daemon logs at start: operators and the
 * reference's own tests grep for them.
 */
import { existsSync } from 'node:fs';
import type { AttachKind, KindProbe } from './attach-kinds';
import type { NativeBinding } from './native';

export interface SupportLevel {
  /** "bpftune works fully" (or legacy / not supported), then the per-netns line: the reference's words. */
  lines: string[];
  supported: boolean;
}

/** What the daemon logs at start and -S prints first, from the attach-kind probes. */
export async function supportLevel(nativeBinding: NativeBinding, probes: KindProbe[], legacy: boolean): Promise<SupportLevel> {
  const lines: string[] = [];
  const supported = new Set<AttachKind>(probes.filter((p) => p.supported).map((p) => p.kind));
  let ringBuffer = true;
  try {
    nativeBinding.createRingBuffer(4096, () => undefined).close();
  } catch {
    ringBuffer = false;
  }
  const btf = existsSync('/sys/kernel/btf/vmlinux');
  const tracing = supported.has('tp_btf') || supported.has('tracepoint') || supported.has('raw_tp');
  const full = btf && ringBuffer && tracing && supported.has('cgroup') && !legacy;
  const legacyOnly = ringBuffer && (supported.has('tracepoint') || supported.has('kprobe'));
  if (full) lines.push('bpftune works fully');
  else if (legacyOnly) lines.push('bpftune works in legacy mode');
  else lines.push('bpftune is not supported');

  let perNetns = false;
  try {
    perNetns = (await nativeBinding.netnsId('/proc/self/ns/net')).cookie !== 0n;
  } catch {
    perNetns = false;
  }
  lines.push(`bpftune ${perNetns ? 'supports' : 'does not support'} per-netns policy (via netns cookie)`);
  return { lines, supported: full || legacyOnly };
}
