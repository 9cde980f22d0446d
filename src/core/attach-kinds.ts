/**
 * Which kinds of BPF attachment this kernel accepts, found by loading and
 * attaching one tiny program of each kind (bpf/probe.bpf.c). A kernel can
 * accept a program type in principle and still refuse it (fentry is EPERM
 * here), so only a real load-and-attach is trusted.
 */
import type { NativeBinding } from './native';
import { errorText } from './log';

export type AttachKind = 'tp_btf' | 'raw_tp' | 'tracepoint' | 'fentry' | 'kprobe' | 'cgroup' | 'iter' | 'other';

export function attachKindOf(section: string): AttachKind {
  const prefix = section.split('/')[0] ?? '';
  switch (prefix) {
    case 'tp_btf':
      return 'tp_btf';
    case 'raw_tp':
    case 'raw_tracepoint':
      return 'raw_tp';
    case 'tp':
    case 'tracepoint':
      return 'tracepoint';
    case 'fentry':
    case 'fexit':
    case 'fmod_ret':
    case 'lsm':
      return 'fentry';
    case 'kprobe':
    case 'kretprobe':
      return 'kprobe';
    case 'sockops':
    case 'cgroup':
    case 'cgroup_skb':
    case 'sk_msg':
      return 'cgroup';
    case 'iter':
      return 'iter';
    default:
      return 'other';
  }
}

/** Kinds that rely on BTF-typed trampolines or tracepoints; -L (legacy) avoids them. */
export function needsBtf(kind: AttachKind): boolean {
  return kind === 'tp_btf' || kind === 'fentry' || kind === 'iter';
}

export interface KindProbe {
  kind: AttachKind;
  supported: boolean;
  reason?: string;
}

const PROBE_PROGRAMS: Array<{ program: string; kind: AttachKind; cgroup: boolean }> = [
  { program: 'probe_tp_btf', kind: 'tp_btf', cgroup: false },
  { program: 'probe_raw_tp', kind: 'raw_tp', cgroup: false },
  { program: 'probe_tracepoint', kind: 'tracepoint', cgroup: false },
  { program: 'probe_fentry', kind: 'fentry', cgroup: false },
  { program: 'probe_kprobe', kind: 'kprobe', cgroup: false },
  { program: 'probe_sockops', kind: 'cgroup', cgroup: true },
  { program: 'probe_iter', kind: 'iter', cgroup: false },
];

export function probeAttachKinds(nativeBinding: NativeBinding, probeObject: string, cgroupPath: string): KindProbe[] {
  return PROBE_PROGRAMS.map(({ program, kind, cgroup }) => {
    let object;
    try {
      object = nativeBinding.openObject(probeObject);
      for (const p of object.programs()) object.setAutoload(p.name, p.name === program);
      object.load();
      object.attach(program, cgroup ? cgroupPath : undefined).close();
      return { kind, supported: true };
    } catch (err) {
      return { kind, supported: false, reason: errorText(err).split('\n')[0] };
    } finally {
      object?.close();
    }
  });
}
