/**
 * Where log lines go (src/core/log-sink.ts): syslog or stderr where there is
 * no journal; the journal alone (fields and all) where it listens and -s is
 * not given, or where stderr is itself the journal; with -s on a terminal,
 * stderr gets every line and the journal each change, so no line is doubled.
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { fstatSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { daemonLogSink } from '../../src/core/log-sink';
import type { NativeBinding } from '../../src/core/native';
import { decodeJournalEntry } from '../support/datagram-receiver';

const dir = mkdtempSync(path.join(os.tmpdir(), 'bpftune-log-sink-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Captured {
  syslog: string[];
  journal: Array<Record<string, string>>;
  stderr: string[];
}

function capture(journalSocket: string | undefined, stderr: boolean, env: NodeJS.ProcessEnv): Captured {
  const got: Captured = { syslog: [], journal: [], stderr: [] };
  const fake = {
    openlog: () => undefined,
    syslog: (_p: number, m: string) => got.syslog.push(m),
    sendUnixDatagram: (_path: string, data: Buffer) => got.journal.push(decodeJournalEntry(data)),
  } as unknown as NativeBinding;
  const saved = process.env.BPFTUNE_JOURNAL_SOCKET;
  process.env.BPFTUNE_JOURNAL_SOCKET = journalSocket ?? path.join(dir, 'no-journal-here');
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = (chunk: string | Uint8Array) => got.stderr.push(String(chunk).trimEnd()) > 0;
  try {
    const sink = daemonLogSink(fake, stderr, env);
    sink('info', 'plain line');
    sink('info', 'change line', { BPFTUNE_TUNABLE: 'net.ipv4.tcp_rmem' });
  } finally {
    process.stderr.write = write;
    if (saved === undefined) delete process.env.BPFTUNE_JOURNAL_SOCKET;
    else process.env.BPFTUNE_JOURNAL_SOCKET = saved;
  }
  return got;
}

const socket = path.join(dir, 'journal.sock');
writeFileSync(socket, '');

test('no journal: syslog without -s, stderr with -s, as the reference does', () => {
  assert.deepEqual(capture(undefined, false, {}), { syslog: ['plain line', 'change line'], journal: [], stderr: [] });
  assert.deepEqual(capture(undefined, true, {}), { syslog: [], journal: [], stderr: ['plain line', 'change line'] });
});

test('journal listening, no -s: every line to the journal once, the change with its fields; nothing to syslog', () => {
  const got = capture(socket, false, {});
  assert.deepEqual(got.syslog, []);
  assert.deepEqual(got.journal.map((e) => e.MESSAGE), ['plain line', 'change line']);
  assert.equal(got.journal[1]?.BPFTUNE_TUNABLE, 'net.ipv4.tcp_rmem');
});

test('-s on a terminal with a journal: every line to stderr, only changes also to the journal', () => {
  const got = capture(socket, true, {});
  assert.deepEqual(got.stderr, ['plain line', 'change line']);
  assert.deepEqual(got.journal.map((e) => e.MESSAGE), ['change line']);
});

test('-s where stderr is the journal stream ($JOURNAL_STREAM): the journal only, not twice', () => {
  const st = fstatSync(2);
  const got = capture(socket, true, { JOURNAL_STREAM: `${st.dev}:${st.ino}` });
  assert.deepEqual(got.stderr, []);
  assert.deepEqual(got.journal.map((e) => e.MESSAGE), ['plain line', 'change line']);
  // Some other stream: stderr is not the journal.
  assert.deepEqual(capture(socket, true, { JOURNAL_STREAM: '1:1' }).stderr, ['plain line', 'change line']);
});
