/**
 * The journal's native protocol and systemd's readiness messages: the
 * encoding byte for byte, and real datagrams through the native addon to a
 * unix socket the test binds (a path and an abstract name).
 */
import { after, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { changeFields, encodeJournalEntry, journalSink, scenarioMessageId } from '../../src/core/journal';
import { native } from '../../src/core/native';
import { ServiceNotifier } from '../../src/core/service-notify';
import { DatagramReceiver, decodeJournalEntry } from '../support/datagram-receiver';

const dir = mkdtempSync(path.join(os.tmpdir(), 'bpftune-journal-test-'));
const receivers: DatagramReceiver[] = [];
after(() => {
  for (const r of receivers) r.close();
  rmSync(dir, { recursive: true, force: true });
});

async function receiver(address: string): Promise<DatagramReceiver> {
  const r = new DatagramReceiver(address);
  receivers.push(r);
  await r.listening();
  return r;
}

const send = (socketPath: string, data: Buffer) => native().sendUnixDatagram(socketPath, data);

test('a single-line value is NAME=value; one with a newline is NAME, 64-bit LE length, bytes', () => {
  assert.equal(encodeJournalEntry({ MESSAGE: 'hello', PRIORITY: '6' }).toString('latin1'), 'MESSAGE=hello\nPRIORITY=6\n');
  const encoded = encodeJournalEntry({ MESSAGE: 'a\nb' });
  assert.deepEqual(encoded, Buffer.concat([Buffer.from('MESSAGE\n'), Buffer.from([3, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('a\nb\n')]));
  // Binary-safe: NUL bytes and UTF-8 go through as bytes.
  const binary = Buffer.from([0x00, 0x0a, 0xff, 0x3d]);
  const withBinary = encodeJournalEntry({ DATA: binary, TEXT: 'grüße = 1' });
  assert.deepEqual(withBinary.subarray(0, 5), Buffer.from('DATA\n'));
  assert.equal(withBinary.readBigUInt64LE(5), 4n);
  assert.deepEqual(withBinary.subarray(13, 17), binary);
  assert.deepEqual(decodeJournalEntry(withBinary).TEXT, 'grüße = 1');
  assert.deepEqual(decodeJournalEntry(encoded), { MESSAGE: 'a\nb' });
});

test('field names journald would refuse are refused', () => {
  for (const name of ['_PID', 'lower', 'WITH-DASH', '', 'A'.repeat(65)]) {
    assert.throws(() => encodeJournalEntry({ [name]: 'x' }), /invalid journal field name/, name);
  }
});

test('MESSAGE_ID is 128 bits, the same for a tuner and scenario every time, different otherwise', () => {
  const id = scenarioMessageId('tcp_buffer', 'need to increase TCP buffer size(s)');
  assert.match(id, /^[0-9a-f]{32}$/);
  assert.equal(id, scenarioMessageId('tcp_buffer', 'need to increase TCP buffer size(s)'));
  // Fixed: operators may filter on it, so it must not change between versions.
  assert.equal(id, 'd9c66c61a1e5cb4403d14fc16c1b68c1');
  assert.notEqual(id, scenarioMessageId('tcp_buffer', 'need to decrease TCP buffer size(s)'));
  assert.notEqual(id, scenarioMessageId('other', 'need to increase TCP buffer size(s)'));
});

test('a change carries tuner, tunable, scenario, cookie, old and new; an action no values', () => {
  const fields = changeFields({ tuner: 't', tunable: 'net.ipv4.tcp_rmem', scenario: 's', netnsCookie: 4097n, old: '1 2 3', new: '1 2 4' });
  assert.deepEqual(fields, {
    MESSAGE_ID: scenarioMessageId('t', 's'),
    BPFTUNE_TUNER: 't',
    BPFTUNE_TUNABLE: 'net.ipv4.tcp_rmem',
    BPFTUNE_SCENARIO: 's',
    BPFTUNE_NETNS_COOKIE: '4097',
    BPFTUNE_OLD: '1 2 3',
    BPFTUNE_NEW: '1 2 4',
  });
  const action = changeFields({ tuner: 't', tunable: 'x', scenario: 's', netnsCookie: 1n });
  assert.equal('BPFTUNE_OLD' in action || 'BPFTUNE_NEW' in action, false);
});

test('the journal sink sends each line as one entry to a real unix socket, with the line exactly as MESSAGE', async () => {
  const socketPath = path.join(dir, 'journal.sock');
  const journal = await receiver(socketPath);
  const fallback: string[] = [];
  const sink = journalSink(send, (_level, message) => fallback.push(message), socketPath);
  const line = "Due to x change net.ipv4.tcp_rmem(min default max) from (4096 131072 6291456) -> (4096 131072 7864320)";
  sink('info', line, changeFields({ tuner: 'tcp_buffer', tunable: 'net.ipv4.tcp_rmem', scenario: 's', netnsCookie: 7n, old: '4096 131072 6291456', new: '4096 131072 7864320' }));
  sink('error', 'two\nlines');
  const change = decodeJournalEntry(await journal.waitFor((d) => d.includes('BPFTUNE_TUNABLE')));
  assert.equal(change.MESSAGE, line);
  assert.equal(change.PRIORITY, '6');
  assert.equal(change.SYSLOG_IDENTIFIER, 'bpftune');
  assert.equal(change.BPFTUNE_NEW, '4096 131072 7864320');
  assert.equal(change.BPFTUNE_NETNS_COOKIE, '7');
  const multi = decodeJournalEntry(await journal.waitFor((d) => d.includes('PRIORITY=3')));
  assert.equal(multi.MESSAGE, 'two\nlines');
  assert.deepEqual(fallback, []);
});

test('a line the journal does not take goes to the fallback sink', () => {
  const fallback: string[] = [];
  const sink = journalSink(send, (_level, message) => fallback.push(message), path.join(dir, 'nobody-listens.sock'));
  sink('warn', 'still logged');
  assert.deepEqual(fallback, ['still logged']);
});

test('sd_notify: READY=1 with STATUS, STATUS only when it changed, STOPPING=1; to an abstract socket', async () => {
  const address = `@bpftune-notify-test-${process.pid}`;
  const systemd = await receiver(address);
  const errors: string[] = [];
  const notifier = new ServiceNotifier(address, send, (m) => errors.push(m));
  notifier.ready('7 tuners loaded; 0 changes made');
  notifier.status('7 tuners loaded; 0 changes made');
  notifier.status('7 tuners loaded; 1 changes made');
  notifier.stopping('stopping; 1 changes made');
  await systemd.waitFor((d) => d.toString().startsWith('STOPPING=1'));
  assert.deepEqual(
    systemd.datagrams.map((d) => d.toString()),
    ['READY=1\nSTATUS=7 tuners loaded; 0 changes made', 'STATUS=7 tuners loaded; 1 changes made', 'STOPPING=1\nSTATUS=stopping; 1 changes made'],
  );
  assert.deepEqual(errors, []);
});

test('sd_notify outside systemd does nothing; a failed send is reported, not thrown', () => {
  const quiet = new ServiceNotifier(undefined, () => assert.fail('must not send'), () => assert.fail('no error'));
  quiet.ready('x');
  const errors: string[] = [];
  new ServiceNotifier(path.join(dir, 'absent.sock'), send, (m) => errors.push(m)).ready('x');
  assert.equal(errors.length, 1);
  assert.match(errors[0] ?? '', /could not notify systemd at .*absent\.sock \(READY=1\): .*sendto.*(No such file|ENOENT)/);
});

test('sendUnixDatagram refuses a relative path and names the errno of a failed send', () => {
  assert.throws(() => send('relative.sock', Buffer.from('x')), /not an absolute or '@' abstract socket path/);
  assert.throws(() => send(path.join(dir, 'absent.sock'), Buffer.from('x')), (err: NodeJS.ErrnoException) => err.code === 'ENOENT');
});
