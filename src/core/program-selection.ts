/**
 * Which of a tuner's BPF programs to load: every program, except that for a
 * hook with alternatives only the first variant this kernel can attach is
 * kept (with -L, variants that need no BTF are preferred). A variant can
 * attach when its kind is supported and its target (tracepoint, function)
 * exists on this kernel. A program with no alternatives whose target is
 * missing is left out too, and named, so the rest of the tuner still runs.
 */
import { attachKindOf, needsBtf, type AttachKind } from './attach-kinds';
import type { ProgramInfo } from './native';
import type { ProgramAlternatives } from './tuner';

export interface SelectedProgram {
  name: string;
  section: string;
  kind: AttachKind;
}

/** false: the target is known to be missing; undefined: cannot tell, let the load decide. */
export type TargetCheck = (section: string) => boolean | undefined;

export interface ProgramSelection {
  selected: SelectedProgram[];
  /** Variants not chosen, and programs left out because their target is missing. */
  disabled: string[];
  /** Programs without alternatives whose target this kernel lacks, e.g. "tp_btf/tcp_sendmsg_locked". */
  missing: SelectedProgram[];
}

export function selectPrograms(
  programs: readonly ProgramInfo[],
  alternatives: readonly ProgramAlternatives[],
  supportedKinds: () => ReadonlySet<AttachKind>,
  legacy: boolean,
  targetExists: TargetCheck = () => undefined,
): ProgramSelection {
  const disabled = new Set<string>();
  const grouped = new Set<string>();
  for (const group of alternatives) {
    const supported = supportedKinds();
    const candidates = group.variants.map((v) => {
      const p = programs.find((x) => x.name === v);
      if (!p) throw new Error(`alternative '${v}' for hook '${group.hook}' is not a program in the object`);
      grouped.add(v);
      return { name: v, section: p.section, kind: attachKindOf(p.section) };
    });
    const usable = candidates.filter((c) => supported.has(c.kind) && targetExists(c.section) !== false);
    const ordered = legacy ? [...usable.filter((c) => !needsBtf(c.kind)), ...usable] : usable;
    const chosen = ordered[0];
    if (!chosen) {
      const why = candidates.map((c) => `${c.section}: ${supported.has(c.kind) ? 'no such target here' : `${c.kind} not supported`}`);
      throw new Error(`no variant of hook '${group.hook}' can attach on this kernel (${why.join('; ')})`);
    }
    for (const c of candidates) if (c.name !== chosen.name) disabled.add(c.name);
  }
  const missing: SelectedProgram[] = [];
  for (const p of programs) {
    if (p.autoload && !grouped.has(p.name) && targetExists(p.section) === false) {
      missing.push({ name: p.name, section: p.section, kind: attachKindOf(p.section) });
      disabled.add(p.name);
    }
  }
  const selected = programs
    .filter((p) => p.autoload && !disabled.has(p.name))
    .map((p) => ({ name: p.name, section: p.section, kind: attachKindOf(p.section) }));
  return { selected, disabled: [...disabled], missing };
}
