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
import type { ConditionalProgram, KernelFacts, ProgramAlternatives } from './tuner';

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
    const loadable = (name: string) => programs.find((x) => x.name === name)?.autoload !== false;
    const usable = candidates.filter((c) => loadable(c.name) && supported.has(c.kind) && targetExists(c.section) !== false);
    const ordered = legacy ? [...usable.filter((c) => !needsBtf(c.kind)), ...usable] : usable;
    const chosen = ordered[0];
    if (!chosen) {
      const why = candidates.map(
        (c) => `${c.section}: ${!loadable(c.name) ? `${c.name} left out` : supported.has(c.kind) ? 'no such target here' : `${c.kind} not supported`}`,
      );
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

/** A conditional program this kernel needs, and why. */
export interface NeededProgram {
  program: string;
  because: string;
  flag?: string;
}

export interface ConditionOutcome {
  /** The object's programs, conditional ones this kernel does not need marked not to load. */
  programs: ProgramInfo[];
  /** Conditional programs not needed here. */
  skipped: string[];
  needed: NeededProgram[];
}

/** Applies a tuner's conditional programs to its object's programs, before selectPrograms. */
export function applyConditions(programs: readonly ProgramInfo[], conditions: readonly ConditionalProgram[], kernel: KernelFacts): ConditionOutcome {
  const skipped: string[] = [];
  const needed: NeededProgram[] = [];
  for (const c of conditions) {
    if (!programs.some((p) => p.name === c.program)) throw new Error(`conditional program '${c.program}' is not a program in the object`);
    const because = c.neededBecause(kernel);
    if (because === undefined) skipped.push(c.program);
    else needed.push({ program: c.program, because, flag: c.flag });
  }
  return { programs: programs.map((p) => (skipped.includes(p.name) ? { ...p, autoload: false } : p)), skipped, needed };
}

/** KernelFacts from a release string (os.release()). */
export function kernelFacts(release: string): KernelFacts {
  const m = /^(\d+)\.(\d+)/.exec(release);
  return { release, version: m ? [Number(m[1]), Number(m[2])] : [0, 0] };
}

/**
 * BPFTUNE_DISABLE_PROGRAMS: names of programs (separated by commas or
 * spaces) to leave out as if this kernel lacked their target, so that a hook
 * takes its next variant. The tests run the fallbacks older kernels take
 * (tcp_buffer's per-read receive hook before 6.16) on a kernel that has the
 * newer hook; an operator can do without one program this way.
 */
export function disabledProgramsSetting(env: NodeJS.ProcessEnv = process.env): ReadonlySet<string> {
  return new Set((env.BPFTUNE_DISABLE_PROGRAMS ?? '').split(/[\s,]+/).filter(Boolean));
}

/** The object's programs, those named marked not to load (before selectPrograms), and which of them it had. */
export function leaveOut(programs: readonly ProgramInfo[], names: ReadonlySet<string>): { programs: ProgramInfo[]; leftOut: string[] } {
  const leftOut = programs.filter((p) => names.has(p.name) && p.autoload).map((p) => p.name);
  return { programs: programs.map((p) => (names.has(p.name) ? { ...p, autoload: false } : p)), leftOut };
}

/** What a tuner declares about its programs (a TunerDefinition's fields). */
export interface ProgramDeclarations {
  conditionalPrograms?: readonly ConditionalProgram[];
  programAlternatives?: readonly ProgramAlternatives[];
}

export interface ProgramPlan extends ProgramSelection {
  /** Named by BPFTUNE_DISABLE_PROGRAMS and in the object. */
  leftOut: string[];
  conditions: ConditionOutcome;
  /** Every program of the object not to load: left out, not chosen, not needed here. */
  notLoaded: string[];
}

/**
 * The whole choice, in the order the loader makes it and -S reports it:
 * programs left out by name, then conditional programs this kernel does not
 * need, then one variant per hook.
 */
export function planPrograms(
  programs: readonly ProgramInfo[],
  declared: ProgramDeclarations,
  kernel: KernelFacts,
  supportedKinds: () => ReadonlySet<AttachKind>,
  legacy: boolean,
  targetExists: TargetCheck,
  disabled: ReadonlySet<string>,
): ProgramPlan {
  const given = leaveOut(programs, disabled);
  const conditions = applyConditions(given.programs, declared.conditionalPrograms ?? [], kernel);
  const selection = selectPrograms(conditions.programs, declared.programAlternatives ?? [], supportedKinds, legacy, targetExists);
  return { ...selection, leftOut: given.leftOut, conditions, notLoaded: [...given.leftOut, ...selection.disabled, ...conditions.skipped] };
}
