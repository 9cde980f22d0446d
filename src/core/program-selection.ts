/**
 * Which of a tuner's BPF programs to load: every program, except that for a
 * hook with alternatives only the first variant this kernel can attach is
 * kept (with -L, variants that need no BTF are preferred).
 */
import { attachKindOf, needsBtf, type AttachKind } from './attach-kinds';
import type { ProgramInfo } from './native';
import type { ProgramAlternatives } from './tuner';

export interface SelectedProgram {
  name: string;
  section: string;
  kind: AttachKind;
}

export function selectPrograms(
  programs: readonly ProgramInfo[],
  alternatives: readonly ProgramAlternatives[],
  supportedKinds: () => ReadonlySet<AttachKind>,
  legacy: boolean,
): { selected: SelectedProgram[]; disabled: string[] } {
  const disabled = new Set<string>();
  for (const group of alternatives) {
    const supported = supportedKinds();
    const candidates = group.variants.map((v) => {
      const p = programs.find((x) => x.name === v);
      if (!p) throw new Error(`alternative '${v}' for hook '${group.hook}' is not a program in the object`);
      return { name: v, kind: attachKindOf(p.section) };
    });
    const usable = candidates.filter((c) => supported.has(c.kind));
    const ordered = legacy ? [...usable.filter((c) => !needsBtf(c.kind)), ...usable] : usable;
    const chosen = ordered[0];
    if (!chosen) {
      throw new Error(`no variant of hook '${group.hook}' can attach on this kernel (tried ${group.variants.join(', ')})`);
    }
    for (const c of candidates) if (c.name !== chosen.name) disabled.add(c.name);
  }
  const selected = programs
    .filter((p) => p.autoload && !disabled.has(p.name))
    .map((p) => ({ name: p.name, section: p.section, kind: attachKindOf(p.section) }));
  return { selected, disabled: [...disabled] };
}
