// @ts-check
/**
 * The kernel/user contract generator: reads a BPF object's BTF (through
 * `bpftool -j btf dump file`) and the C files that declare its structs and
 * enums, and writes one TypeScript module with a typed codec for every
 * struct (event payloads, map keys and values), a const object for every
 * enum, and a typed spec for every map. Tuners import only this module, so
 * a struct or enum changed in C that TypeScript does not follow fails tsc.
 *
 * Plain JavaScript (CommonJS, Node 18) so a plugin built out of tree can run
 * it without compiling anything first.
 */
'use strict';

const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

/** Member names that only keep alignment: left out of the TypeScript shape, written as zero. */
const PADDING = /^(_*pad\d*|_*reserved\d*)$/;

/**
 * @typedef {{ id: number, kind: string, name: string, size?: number, type_id?: number, nr_elems?: number,
 *   encoding?: string, nr_bits?: number, bits_offset?: number,
 *   members?: Array<{ name: string, type_id: number, bits_offset: number, bits_size?: number }>,
 *   values?: Array<{ name: string, val: number }>, vars?: Array<{ type_id: number, offset: number, size: number }> }} BtfType
 */

/** @param {string} object */
function readBtf(object) {
  const bpftool = process.env.BPFTOOL || 'bpftool';
  let out;
  try {
    out = execFileSync(bpftool, ['-j', 'btf', 'dump', 'file', object], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  } catch (err) {
    throw new Error(`cannot read the BTF of ${object} with ${bpftool}: ${err instanceof Error ? err.message : String(err)}`);
  }
  /** @type {{ types: BtfType[] }} */
  const dump = JSON.parse(out);
  /** @type {Map<number, BtfType>} */
  const byId = new Map();
  for (const t of dump.types) byId.set(t.id, t);
  return byId;
}

/**
 * Named structs and enums a C file declares (`struct x {`, `enum x {`).
 * @param {string} text
 */
function declaredTypes(text) {
  const noComments = text.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/\/\/.*$/gm, ' ');
  /** @type {{ structs: string[], enums: string[] }} */
  const found = { structs: [], enums: [] };
  for (const m of noComments.matchAll(/\b(struct|enum)\s+([A-Za-z_]\w*)\s*\{/g)) {
    (m[1] === 'struct' ? found.structs : found.enums).push(/** @type {string} */ (m[2]));
  }
  return found;
}

/** @param {string} name */
function camel(name) {
  return name.replace(/^_+/, '').replace(/_([a-z0-9])/g, (_m, c) => String(c).toUpperCase());
}

/** @param {string} name */
function pascal(name) {
  const c = camel(name);
  return c.charAt(0).toUpperCase() + c.slice(1);
}

class Generator {
  /**
   * @param {Map<number, BtfType>} btf
   * @param {string} origin
   */
  constructor(btf, origin) {
    this.btf = btf;
    this.origin = origin;
    /** @type {Map<string, string>} struct name -> generated code */
    this.structs = new Map();
    /** @type {Map<string, string>} codecs of integer map keys and values */
    this.scalars = new Map();
  }

  /** @param {number} id */
  type(id) {
    const t = this.btf.get(id);
    if (!t) throw new Error(`${this.origin}: BTF type id ${id} is missing`);
    return t;
  }

  /** Skips typedefs and qualifiers. @param {number} id */
  resolve(id) {
    let t = this.type(id);
    while (['TYPEDEF', 'CONST', 'VOLATILE', 'RESTRICT', 'TYPE_TAG'].includes(t.kind)) t = this.type(/** @type {number} */ (t.type_id));
    return t;
  }

  /** @param {string} kind @param {string} name */
  find(kind, name) {
    for (const t of this.btf.values()) if (t.kind === kind && t.name === name) return t;
    return undefined;
  }

  /**
   * How one field is read and written: TypeScript type, size, and expressions
   * reading from `b` at offset `o` / writing `v` to `b` at `o`.
   * @param {number} id
   * @param {string} where
   * @returns {{ ts: string, size: number, read: (o: string) => string, write: (v: string, o: string) => string }}
   */
  field(id, where) {
    const t = this.resolve(id);
    if (t.kind === 'INT' || t.kind === 'ENUM' || t.kind === 'ENUM64') {
      const size = /** @type {number} */ (t.size);
      const signed = t.kind === 'INT' ? t.encoding === 'SIGNED' : false;
      if (t.kind === 'INT' && t.encoding === 'BOOL') {
        return { ts: 'boolean', size, read: (o) => `b.readUInt8(${o}) !== 0`, write: (v, o) => `b.writeUInt8(${v} ? 1 : 0, ${o})` };
      }
      const method = {
        1: signed ? 'Int8' : 'UInt8',
        2: signed ? 'Int16LE' : 'UInt16LE',
        4: signed ? 'Int32LE' : 'UInt32LE',
        8: signed ? 'BigInt64LE' : 'BigUInt64LE',
      }[size];
      if (!method) throw new Error(`${where}: integer of ${size} bytes is not supported`);
      return { ts: size === 8 ? 'bigint' : 'number', size, read: (o) => `b.read${method}(${o})`, write: (v, o) => `b.write${method}(${v}, ${o})` };
    }
    if (t.kind === 'ARRAY') {
      const n = /** @type {number} */ (t.nr_elems);
      const elem = this.resolve(/** @type {number} */ (t.type_id));
      if (elem.kind === 'INT' && elem.size === 1 && (elem.encoding === 'CHAR' || elem.name === 'char')) {
        // A NUL-terminated C string.
        return {
          ts: 'string',
          size: n,
          read: (o) => `cString(b, ${o}, ${n})`,
          write: (v, o) => `(b.fill(0, ${o}, ${o} + ${n}), b.write(${v}, ${o}, ${n - 1}, 'utf8'))`,
        };
      }
      if (elem.kind === 'INT' && elem.size === 1) {
        // Bytes: a copy, so a decoded value outlives the sample it came from.
        return { ts: 'Buffer', size: n, read: (o) => `Buffer.from(b.subarray(${o}, ${o} + ${n}))`, write: (v, o) => `${v}.copy(b, ${o}, 0, ${n})` };
      }
      const inner = this.field(/** @type {number} */ (t.type_id), `${where}[]`);
      const s = inner.size;
      return {
        ts: `${inner.ts}[]`,
        size: s * n,
        read: (o) => `Array.from({ length: ${n} }, (_, i) => ${inner.read(`${o} + ${s} * i`)})`,
        write: (v, o) => `${v}.slice(0, ${n}).forEach((x, i) => ${inner.write('x', `${o} + ${s} * i`)})`,
      };
    }
    if (t.kind === 'STRUCT') {
      if (!t.name) throw new Error(`${where}: anonymous structs are not supported; name it`);
      this.struct(t);
      const T = pascal(t.name);
      return { ts: T, size: /** @type {number} */ (t.size), read: (o) => `${T}.decode(b, ${o})`, write: (v, o) => `${T}.encode(${v}, b, ${o})` };
    }
    throw new Error(`${where}: BTF kind ${t.kind} has no TypeScript form (use integers, arrays, named structs)`);
  }

  /** Emits a codec for a struct (once). @param {BtfType} t */
  struct(t) {
    if (this.structs.has(t.name)) return;
    this.structs.set(t.name, '');
    const T = pascal(t.name);
    const size = /** @type {number} */ (t.size);
    const fields = [];
    for (const m of t.members ?? []) {
      if (m.bits_size || m.bits_offset % 8) throw new Error(`struct ${t.name}.${m.name}: bit fields are not supported`);
      if (!m.name) throw new Error(`struct ${t.name}: anonymous members are not supported`);
      const f = this.field(m.type_id, `struct ${t.name}.${m.name}`);
      fields.push({ c: m.name, ts: camel(m.name), offset: m.bits_offset / 8, f });
    }
    const visible = fields.filter((x) => !PADDING.test(x.c));
    const lines = [];
    lines.push(`/** struct ${t.name}: ${size} bytes. */`);
    lines.push(`export interface ${T} {`);
    for (const x of visible) lines.push(`  /** ${x.c}, at byte ${x.offset}. */`, `  ${x.ts}: ${x.f.ts};`);
    lines.push('}');
    lines.push(`export const ${T} = {`);
    lines.push(`  size: ${size},`);
    lines.push(`  decode(b: Buffer, offset = 0): ${T} {`);
    lines.push(`    need(b, offset, ${size}, 'struct ${t.name}');`);
    lines.push('    return {');
    for (const x of visible) lines.push(`      ${x.ts}: ${x.f.read(`offset + ${x.offset}`)},`);
    lines.push('    };');
    lines.push('  },');
    lines.push(`  encode(value: ${T}, b: Buffer = Buffer.alloc(${size}), offset = 0): Buffer {`);
    lines.push(`    need(b, offset, ${size}, 'struct ${t.name}');`);
    lines.push(`    b.fill(0, offset, offset + ${size});`);
    for (const x of visible) lines.push(`    ${x.f.write(`value.${x.ts}`, `offset + ${x.offset}`)};`);
    lines.push('    return b;');
    lines.push('  },');
    lines.push('};');
    if (!visible.length) {
      lines[1] = `export type ${T} = Record<string, never>;`;
      lines.splice(2, 1);
    }
    this.structs.set(t.name, lines.join('\n'));
  }

  /** @param {BtfType} t */
  enumeration(t) {
    const E = pascal(t.name);
    const values = t.values ?? [];
    const prefix = `${t.name.toUpperCase()}_`;
    const strip = values.length > 0 && values.every((v) => v.name.startsWith(prefix) && /^[A-Z_]/.test(v.name.slice(prefix.length)));
    const lines = [`/** enum ${t.name}. */`, `export const ${E} = {`];
    for (const v of values) lines.push(`  ${strip ? v.name.slice(prefix.length) : v.name}: ${v.val},`);
    lines.push('} as const;');
    lines.push(`export type ${E} = (typeof ${E})[keyof typeof ${E}];`);
    return lines.join('\n');
  }

  /** Named codec for a map key or value of integer type, emitted once. @param {number} id @param {string} where */
  scalarCodec(id, where) {
    const f = this.field(id, where);
    const name = `${f.read('o').replace(/^b\.read|\(o\).*$/g, '')}Codec`.replace(/^./, (c) => c.toLowerCase());
    this.scalars.set(
      name,
      `const ${name} = {\n  size: ${f.size},\n  decode: (b: Buffer, offset = 0): ${f.ts} => ${f.read('offset')},\n` +
        `  encode(v: ${f.ts}, b: Buffer = Buffer.alloc(${f.size}), offset = 0): Buffer {\n    ${f.write('v', 'offset')};\n    return b;\n  },\n};`,
    );
    return name;
  }

  /** Every map with a typed key and value, except the ones bpftune.bpf.h brings. */
  maps() {
    const sec = this.find('DATASEC', '.maps');
    const lines = [];
    for (const v of sec?.vars ?? []) {
      const variable = this.type(v.type_id);
      if (variable.name === 'ring_buffer' || variable.name.startsWith('bpftune_')) continue;
      const def = this.resolve(/** @type {number} */ (variable.type_id));
      const member = (/** @type {string} */ n) => def.members?.find((m) => m.name === n);
      const key = member('key');
      const value = member('value');
      if (!key || !value) continue;
      const codec = (/** @type {number} */ ptrId, /** @type {string} */ what) => {
        const target = this.resolve(/** @type {number} */ (this.type(ptrId).type_id));
        if (target.kind === 'STRUCT' && target.name) {
          this.struct(target);
          return pascal(target.name);
        }
        return this.scalarCodec(/** @type {number} */ (this.type(ptrId).type_id), `map ${variable.name} ${what}`);
      };
      lines.push(`  ${camel(variable.name)}: { name: '${variable.name}', key: ${codec(key.type_id, 'key')}, value: ${codec(value.type_id, 'value')} },`);
    }
    if (!lines.length) return '';
    return ['/** The object\'s maps, with their key and value codecs: pass one to ctx.map(). */', 'export const maps = {', ...lines, '};'].join('\n');
  }
}

/**
 * @param {{ object: string, declarations: string[], banner?: string }} options
 *   object: the BPF object; declarations: C files whose named structs and enums make the contract.
 * @returns {string} the TypeScript module
 */
function generateContract(options) {
  const btf = readBtf(options.object);
  const gen = new Generator(btf, options.object);
  const enums = [];
  const problems = [];
  for (const file of options.declarations) {
    const declared = declaredTypes(fs.readFileSync(file, 'utf8'));
    for (const name of declared.enums) {
      const t = gen.find('ENUM', name) ?? gen.find('ENUM64', name);
      if (!t) problems.push(`enum ${name} (${file}) is not in the BTF of ${options.object}: keep it with BPFTUNE_CONTRACT_ENUM(${name});`);
      else enums.push(gen.enumeration(t));
    }
    for (const name of declared.structs) {
      const t = gen.find('STRUCT', name);
      if (!t) problems.push(`struct ${name} (${file}) is not in the BTF of ${options.object}: keep it with BPFTUNE_CONTRACT_STRUCT(${name});`);
      else gen.struct(t);
    }
  }
  if (problems.length) throw new Error(problems.join('\n'));
  const maps = gen.maps();
  const sources = options.declarations.map((f) => path.basename(f)).join(', ');
  return [
    `// Generated by bpftune-contract from ${path.basename(options.object)} (BTF) and ${sources}. Do not edit: the build rewrites it.`,
    '',
    'function need(b: Buffer, offset: number, size: number, what: string): void {',
    '  if (b.length < offset + size) throw new Error(`${what} needs ${size} bytes at ${offset}, buffer has ${b.length}`);',
    '}',
    '',
    'function cString(b: Buffer, offset: number, length: number): string {',
    '  const s = b.subarray(offset, offset + length);',
    '  const end = s.indexOf(0);',
    "  return s.subarray(0, end < 0 ? s.length : end).toString('utf8');",
    '}',
    '',
    ...enums.flatMap((e) => [e, '']),
    ...[...gen.structs.values()].flatMap((s) => [s, '']),
    ...[...gen.scalars.values()].flatMap((s) => [s, '']),
    ...(maps ? [maps, ''] : []),
    // Helpers unused by a given contract must not trip noUnusedLocals.
    'void need;',
    'void cString;',
    '',
  ].join('\n');
}

module.exports = { generateContract, declaredTypes };
