/**
 * `bpftune -S`: what this kernel supports, in the reference's words, and per
 * tuner which attach mode it would run in.
 */
import { existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { probeAttachKinds, type AttachKind } from '../core/attach-kinds';
import { attachTargetExists, kernelTargetSources } from '../core/attach-targets';
import { sampledProgram, samplingSettings, samplingSummary, type SamplingSettings } from '../core/hook-sampling';
import { supportLevel } from '../core/support-level';
import { errorText } from '../core/log';
import type { NativeBinding } from '../core/native';
import { builtinLibdir, probeObjectPath } from '../core/paths';
import { scanTunerDirectory } from '../core/plugin-dir';
import { disabledProgramsSetting, kernelFacts, planPrograms } from '../core/program-selection';
import type { TunerDefinition } from '../core/tuner';

export interface SupportReport {
  lines: string[];
  supported: boolean;
}

export async function supportReport(
  nativeBinding: NativeBinding,
  cgroupPath: string,
  libdirs: string[],
  legacy: boolean,
  sampling: SamplingSettings = samplingSettings(),
  disabledPrograms: ReadonlySet<string> = disabledProgramsSetting(),
): Promise<SupportReport> {
  const probes = probeAttachKinds(nativeBinding, probeObjectPath(), cgroupPath);
  const supported = new Set<AttachKind>(probes.filter((p) => p.supported).map((p) => p.kind));
  const level = await supportLevel(nativeBinding, probes, legacy);
  const lines = [...level.lines];

  if (!existsSync('/sys/kernel/btf/vmlinux')) {
    lines.push(
      'no kernel BTF (/sys/kernel/btf/vmlinux): tp_btf, fentry and iterator programs and CO-RE reads of kernel structs cannot run; ' +
        'tuners that need them are left out and the others run (a kernel built with CONFIG_DEBUG_INFO_BTF=y runs them all)',
    );
  }
  for (const p of probes) {
    lines.push(`attach kind ${p.kind}: ${p.supported ? 'supported' : `not supported (${p.reason ?? 'unknown'})`}`);
  }
  const targets = kernelTargetSources();
  for (const dir of libdirs) {
    const { modules } = await scanTunerDirectory(dir, {
      checkAncestors: dir !== builtinLibdir(),
      xattrExists: (file, name) => nativeBinding.xattrExists(file, name),
    });
    for (const m of modules) {
      try {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const exported = require(m.modulePath) as { default?: TunerDefinition };
        const def = exported.default ?? (exported as unknown as TunerDefinition);
        const object = nativeBinding.openObject(path.join(m.dir, def.bpfObject ?? `${def.name}.bpf.o`));
        try {
          const exists = (section: string) => attachTargetExists(section, targets);
          const { selected, missing, conditions, leftOut: namedOut } = planPrograms(object.programs(), def, kernelFacts(os.release()), () => supported, legacy, exists, disabledPrograms);
          const because = conditions.needed
            .filter((n) => selected.some((s) => s.name === n.program))
            .map((n) => `; ${n.program} because ${n.because}`)
            .join('');
          const selectedNames = selected.map((s) => s.name);
          const sampled = (def.sampledHooks ?? [])
            .flatMap((h) => {
              const program = sampledProgram(h, selectedNames);
              return program ? [`; ${program} ${samplingSummary(h, sampling)}`] : [];
            })
            .join('');
          const leftOut = namedOut.length ? `; left out ${namedOut.join(', ')} (BPFTUNE_DISABLE_PROGRAMS)` : '';
          const without = missing.length ? `; without ${missing.map((m) => m.section).join(', ')} (not in this kernel, no fallback)` : '';
          const kinds = [...new Set(selected.map((s) => s.kind))];
          const ok = selected.every((s) => supported.has(s.kind) || s.kind === 'other');
          lines.push(
            selected.length === 0
              ? `tuner '${def.name}': would use no BPF programs (reads kernel counters)`
              : `tuner '${def.name}': ${ok ? 'would use' : 'cannot attach'} ${kinds.join(', ')} (${selected.map((s) => s.section).join(', ')})${without}${leftOut}${because}${sampled}`,
          );
        } finally {
          object.close();
        }
      } catch (err) {
        lines.push(`tuner in ${m.dir}: cannot be used: ${errorText(err).split('\n')[0]}`);
      }
    }
  }
  return { lines, supported: level.supported };
}
