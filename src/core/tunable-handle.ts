/**
 * ctx.tunable(declaration): a declared tunable's values typed by its
 * declaration (numbers, or strings for a `string: true` tunable), so no
 * tuner casts what it reads. Shared by the loader and test stand-ins.
 */
import type { SysctlValue } from './sysctl-values';
import type { TunableDeclaration, TunableHandle, TunableValues } from './tuner';

export function tunableHandle<T extends TunableDeclaration>(
  declaration: T,
  read: (netnsCookie?: bigint) => Promise<SysctlValue[]>,
): TunableHandle<TunableValues<T>> {
  return {
    name: declaration.name,
    get: async (cookie) => {
      const values = await read(cookie);
      // The values were parsed by this declaration's own flag; this tells the type system which it was.
      return (declaration.string ? values.map(String) : values.map(Number)) as TunableValues<T>;
    },
  };
}
