/**
 * Sysctl names and values as text: "net.ipv4.tcp_rmem" <-> "net/ipv4/tcp_rmem",
 * and "4096\t131072\t6291456" <-> [4096, 131072, 6291456].
 */
export type SysctlValue = number | string;

export function sysctlPath(name: string): string {
  return name.includes('/') ? name.replace(/^\/proc\/sys\//, '') : name.split('.').join('/');
}

export function sysctlDottedName(name: string): string {
  return name.replace(/^\/proc\/sys\//, '').split('/').join('.');
}

/** Numeric tunables parse to numbers; string tunables keep their words. */
export function parseSysctlValues(text: string, isString: boolean): SysctlValue[] {
  const trimmed = text.trim();
  if (isString) return [trimmed];
  const words = trimmed.split(/\s+/).filter((w) => w.length > 0);
  return words.map((w) => {
    const n = Number(w);
    if (!Number.isFinite(n)) throw new Error(`sysctl value '${w}' is not a number`);
    return n;
  });
}

export function formatSysctlValues(values: readonly SysctlValue[]): string {
  return values.map(String).join(' ');
}

/**
 * Values as the reference prints them in its summary and rollback lines
 * (operators grep for them): each number followed by a space ("%ld "), a
 * string tunable's words as they are.
 */
export function spacedValues(values: readonly SysctlValue[]): string {
  return values.map((v) => (typeof v === 'string' ? v : `${v} `)).join('');
}

export function sameValues(a: readonly SysctlValue[], b: readonly SysctlValue[]): boolean {
  return a.length === b.length && a.every((v, i) => String(v) === String(b[i]));
}
