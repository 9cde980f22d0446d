/**
 * The man pages (man/*.md, rendered by `make man` into dist/man): each renders
 * without a warning from man, every built-in tuner has its page, and the pages
 * name what the code has: every option and query in bpftune(8), every
 * scenario and tunable of a tuner in bpftune-<tuner>(8).
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { usage } from '../src/cli/args';
import type { DaemonView } from '../src/server/view';
import type { TunerDefinition } from '../src/core/tuner';
import { createQueries } from '../src/server/queries';
import { REPO_ROOT } from './support/daemon';

const SOURCES = path.join(REPO_ROOT, 'man');
const RENDERED = path.join(REPO_ROOT, 'dist', 'man');
const TUNERS = path.join(REPO_ROOT, 'dist', 'src', 'tuners');
const source = (page: string) => readFileSync(path.join(SOURCES, `${page}.md`), 'utf8');

test('every page renders, and man --warnings prints nothing for it', () => {
  const pages = readdirSync(SOURCES).filter((f) => f.endsWith('.8.md'));
  assert.ok(pages.length >= 8, `expected bpftune.8 and a page per tuner, found ${pages.join(', ')}`);
  for (const page of pages.map((f) => f.replace(/\.md$/, ''))) {
    const r = spawnSync('man', ['--warnings', '-l', path.join(RENDERED, page)], { encoding: 'utf8', env: { ...process.env, MANWIDTH: '80' } });
    assert.equal(r.status, 0, `man -l ${page}: ${r.stderr}`);
    assert.equal(r.stderr, '', `man --warnings -l ${page}`);
    assert.match(r.stdout, /NAME/, `${page} renders`);
  }
});

test('bpftune(8) documents every option, every query, and -h points to it', () => {
  const page = source('bpftune.8');
  const options = [...usage().matchAll(/--([a-z_-]+)/g)].map((m) => m[1]);
  assert.ok(options.length >= 15);
  for (const option of options) assert.ok(page.includes(`**--${option}**`), `option --${option}`);
  const queries = [...createQueries({} as DaemonView).keys()];
  for (const query of queries) assert.match(page, new RegExp(`^\\*\\*${query}\\*\\*`, 'm'), `query ${query}`);
  assert.match(usage(), /man bpftune/);
});

test("each built-in tuner has a page naming its scenarios and tunables", () => {
  const tuners = readdirSync(TUNERS, { withFileTypes: true }).filter((d) => d.isDirectory());
  assert.ok(tuners.length >= 7);
  for (const dir of tuners) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const definition = (require(path.join(TUNERS, dir.name, 'index.js')) as { default: TunerDefinition }).default;
    const page = source(`bpftune-${definition.name}.8`);
    for (const scenario of definition.scenarios) assert.ok(page.includes(scenario.name), `${definition.name}: scenario '${scenario.name}'`);
    for (const tunable of definition.tunables) assert.ok(page.includes(tunable.name), `${definition.name}: tunable '${tunable.name}'`);
    assert.ok(source('bpftune.8').includes(`**bpftune-${definition.name}**(8)`), `bpftune(8) refers to bpftune-${definition.name}(8)`);
  }
});
