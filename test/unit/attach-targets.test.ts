import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { attachTargetExists, cachedForAWhile, parseBtfNames, type TargetSources } from '../../src/core/attach-targets';

/** A BTF blob with the given types (each: kind, name, extra bytes after the 12-byte header). */
function btfBlob(types: Array<{ kind: number; name: string; vlen?: number; extra?: number }>): Buffer {
  const strings = ['', ...types.map((t) => t.name)];
  const strBuf = Buffer.from(strings.join('\0') + '\0', 'latin1');
  const offsets: number[] = [];
  let off = 0;
  for (const s of strings) {
    offsets.push(off);
    off += Buffer.byteLength(s, 'latin1') + 1;
  }
  const typeBufs = types.map((t, i) => {
    const b = Buffer.alloc(12 + (t.extra ?? 0));
    b.writeUInt32LE(offsets[i + 1] ?? 0, 0);
    b.writeUInt32LE(((t.kind & 0x1f) << 24) | (t.vlen ?? 0), 4);
    return b;
  });
  const typeSec = Buffer.concat(typeBufs);
  const hdr = Buffer.alloc(24);
  hdr.writeUInt16LE(0xeb9f, 0);
  hdr.writeUInt8(1, 2);
  hdr.writeUInt32LE(24, 4);
  hdr.writeUInt32LE(0, 8);
  hdr.writeUInt32LE(typeSec.length, 12);
  hdr.writeUInt32LE(typeSec.length, 16);
  hdr.writeUInt32LE(strBuf.length, 20);
  return Buffer.concat([hdr, typeSec, strBuf]);
}

test('parseBtfNames walks every kind size and keeps functions and btf_trace_ typedefs', () => {
  const blob = btfBlob([
    { kind: 4, name: 'sock', vlen: 2, extra: 24 }, // struct with two members
    { kind: 6, name: 'skb_drop_reason', vlen: 3, extra: 24 }, // enum with three values
    { kind: 13, name: '', vlen: 2, extra: 16 }, // func proto with two params
    { kind: 8, name: 'btf_trace_tcp_rcv_space_adjust' },
    { kind: 8, name: 'u32' },
    { kind: 12, name: 'tcp_sendmsg_locked' },
    { kind: 1, name: 'int', extra: 4 },
    { kind: 12, name: 'tcp_rcv_space_adjust' },
  ]);
  const names = parseBtfNames(blob);
  assert.equal(names.tracepoints.has('tcp_rcv_space_adjust'), true);
  // A typedef without the btf_trace_ prefix, a FUNC and a struct are no tracepoints.
  for (const name of ['u32', 'tcp_sendmsg_locked', 'sock', 'btf_trace_tcp_rcv_space_adjust', '']) assert.equal(names.tracepoints.has(name), false, name);
  assert.equal(names.functions.has('tcp_sendmsg_locked'), true);
  assert.equal(names.functions.has('tcp_rcv_space_adjust'), true);
  // Names of other kinds, a name that is only the end of another, and one not there at all.
  for (const name of ['sock', 'int', 'skb_drop_reason', 'sendmsg_locked', 'tcp_sendmsg', 'nonexistent']) assert.equal(names.functions.has(name), false, name);
  assert.equal(names.functionCount, 2);
  // The walk reads words: a blob at an odd offset in its memory gives the same answers.
  const shifted = Buffer.alloc(blob.length + 1).subarray(1);
  blob.copy(shifted);
  assert.equal(parseBtfNames(shifted).functions.has('tcp_sendmsg_locked'), true);
  assert.equal(parseBtfNames(shifted).tracepoints.has('tcp_rcv_space_adjust'), true);
  assert.throws(() => parseBtfNames(Buffer.alloc(24)), /not a little-endian BTF blob/);
});

test('attachTargetExists answers from the right source per section kind, and "unknown" without one', () => {
  const sources: TargetSources = {
    btf: () => ({ tracepoints: new Set(['kfree_skb']), functions: new Set(['tcp_sendmsg_locked']), functionCount: 1 }),
    kallsyms: () => new Set(['tcp_sendmsg_locked']),
    tracefsEvent: (c, n) => c === 'syscalls' && n === 'sys_enter_unshare',
  };
  assert.equal(attachTargetExists('tp_btf/kfree_skb', sources), true);
  assert.equal(attachTargetExists('tp_btf/tcp_sendmsg_locked', sources), false);
  assert.equal(attachTargetExists('fentry/tcp_sendmsg_locked', sources), true);
  assert.equal(attachTargetExists('kprobe/tcp_sendmsg_locked', sources), true);
  assert.equal(attachTargetExists('kprobe/tcp_sndbuf_expand', sources), false);
  assert.equal(attachTargetExists('tracepoint/syscalls/sys_enter_unshare', sources), true);
  assert.equal(attachTargetExists('sockops', sources), undefined);
  const none: TargetSources = { btf: () => undefined, kallsyms: () => undefined, tracefsEvent: () => undefined };
  assert.equal(attachTargetExists('tp_btf/kfree_skb', none), undefined);
});

test('this kernel: the vmlinux BTF names the tracepoints and functions the tuners hook', { skip: !existsSync('/sys/kernel/btf/vmlinux') }, () => {
  const names = parseBtfNames(readFileSync('/sys/kernel/btf/vmlinux'));
  for (const tp of ['tcp_rcv_space_adjust', 'kfree_skb', 'sock_exceed_buf_limit']) assert.ok(names.tracepoints.has(tp), tp);
  assert.ok(names.functions.has('tcp_sendmsg_locked'));
  assert.ok(!names.functions.has('btf_trace_kfree_skb') && !names.tracepoints.has('tcp_sendmsg'));
  assert.ok(names.functionCount > 10000, `${names.functionCount} functions`);
});

test('cachedForAWhile reads once while asked, forgets after the keep time without a use, and reads again', async () => {
  let reads = 0;
  const source = cachedForAWhile(() => ({ read: ++reads }), 60);
  assert.deepEqual(source(), { read: 1 });
  for (let i = 0; i < 4; i++) {
    await new Promise((r) => setTimeout(r, 30));
    assert.deepEqual(source(), { read: 1 }, 'each use keeps it for another keep time');
  }
  await new Promise((r) => setTimeout(r, 150));
  assert.deepEqual(source(), { read: 2 }, 'forgotten after the keep time, read again');
  const failing = cachedForAWhile(() => {
    reads++;
    throw new Error('unreadable');
  }, 60);
  const before = reads;
  assert.equal(failing(), undefined);
  assert.equal(failing(), undefined);
  assert.equal(reads, before + 1, 'a failed read is remembered (as unknown) like a value');
});
