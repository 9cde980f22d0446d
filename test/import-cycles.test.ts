/**
 * The core runs the query server, so the server must not reach back into
 * the core's daemon: it sees a narrow view declared in src/server/view.ts.
 * This reads every import (type-only ones too) under src/ and fails on any
 * import cycle that spans src/core and src/server.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

const SRC = path.resolve(__dirname, '..', '..', 'src');

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [p] : [];
  });
}

/** Relative imports of a file, resolved to .ts files (import, import type, export from, import()). */
function imports(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:from\s+|import\s*\(\s*)'(\.{1,2}\/[^']+)'/g)].map((m) => m[1] ?? '');
  return specs.map((s) => path.resolve(path.dirname(file), `${s}.ts`)).filter((f) => fs.existsSync(f));
}

/** Strongly connected components of the import graph (Tarjan). */
function cycles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const indices = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    indices.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!indices.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) ?? 0, low.get(w) ?? 0));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v) ?? 0, indices.get(w) ?? 0));
      }
    }
    if (low.get(v) === indices.get(v)) {
      const component: string[] = [];
      let w: string | undefined;
      do {
        w = stack.pop();
        if (w === undefined) break;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) found.push(component);
    }
  };
  for (const v of graph.keys()) if (!indices.has(v)) visit(v);
  return found;
}

test('no import cycle joins src/core and src/server', () => {
  const files = sources(SRC);
  assert.ok(files.some((f) => f.includes(`${path.sep}server${path.sep}`)), 'finds the server sources');
  const graph = new Map(files.map((f) => [f, imports(f)]));
  const rel = (f: string) => path.relative(SRC, f);
  const crossing = cycles(graph)
    .map((c) => c.map(rel))
    .filter((c) => c.some((f) => f.startsWith('core/')) && c.some((f) => f.startsWith('server/')));
  assert.deepEqual(crossing, [], 'import cycles spanning core and server');
});

test('the cycle finder finds a cycle', () => {
  const graph = new Map([
    ['a', ['b']],
    ['b', ['c']],
    ['c', ['a']],
    ['d', ['a']],
  ]);
  assert.deepEqual(cycles(graph).map((c) => c.sort()), [['a', 'b', 'c']]);
});
