/**
 * Where the daemon's lines go. Without -s: syslog(3), as the reference does;
 * but where systemd's journal listens, straight to the journal instead (it
 * is what receives syslog there anyway), so a change's line carries its
 * fields and appears once. With -s: stderr, and each change also to the
 * journal when there is one; unless stderr is itself the journal (a service
 * run with -s), when the native entry replaces the stderr line.
 */
import { existsSync } from 'node:fs';
import { journalSink, journalSocketPath, stderrIsJournal } from './journal';
import { stderrSink, syslogSink, type LogSink } from './log';
import type { NativeBinding } from './native';

export function daemonLogSink(nativeBinding: NativeBinding, stderr: boolean, env: NodeJS.ProcessEnv = process.env): LogSink {
  const send = (path: string, data: Buffer) => nativeBinding.sendUnixDatagram(path, data);
  const syslog = (): LogSink => {
    nativeBinding.openlog('bpftune');
    return syslogSink((p, m) => nativeBinding.syslog(p, m));
  };
  // With -s, lines go on to syslog should stderr's reader go away.
  const plain = (): LogSink => (stderr ? stderrSink(syslog) : syslog());
  const socket = journalSocketPath();
  if (!existsSync(socket)) return plain();
  if (!stderr || stderrIsJournal(env)) return journalSink(send, plain(), socket);
  const toStderr = stderrSink(syslog);
  const changes = journalSink(send, () => undefined, socket);
  return (level, message, fields) => {
    toStderr(level, message);
    if (fields) changes(level, message, fields);
  };
}
