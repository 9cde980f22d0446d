/**
 * systemd's journal, written through its native protocol: one datagram per
 * entry to /run/systemd/journal/socket, each field `NAME=value\n`, or, for a
 * value holding a newline, `NAME\n` + its length as 64-bit little-endian +
 * the bytes + `\n` (the protocol's binary-safe form). Fields let an operator
 * ask for one tunable's history: `journalctl -u bpftune BPFTUNE_TUNABLE=...`.
 */
import { createHash } from 'node:crypto';
import { fstatSync } from 'node:fs';
import { SYSLOG_PRIORITY, type LogFields, type LogLevel, type LogSink } from './log';

export function journalSocketPath(): string {
  // Tests point it at a socket they bind; systemd's is fixed.
  return process.env.BPFTUNE_JOURNAL_SOCKET ?? '/run/systemd/journal/socket';
}

/** journald accepts upper-case letters, digits and '_', not starting with '_' (those are trusted fields). */
const FIELD_NAME = /^[A-Z0-9][A-Z0-9_]{0,63}$/;

export function encodeJournalEntry(fields: Readonly<Record<string, string | Buffer>>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of Object.entries(fields)) {
    if (!FIELD_NAME.test(name)) throw new Error(`invalid journal field name '${name}'`);
    const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    if (!bytes.includes(0x0a)) {
      parts.push(Buffer.from(`${name}=`), bytes, Buffer.from('\n'));
      continue;
    }
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(bytes.length));
    parts.push(Buffer.from(`${name}\n`), length, bytes, Buffer.from('\n'));
  }
  return Buffer.concat(parts);
}

/**
 * A stable MESSAGE_ID per tuner and scenario (journalctl MESSAGE_ID=...):
 * 128 bits of a hash, so the id never changes between versions or hosts.
 */
export function scenarioMessageId(tuner: string, scenario: string): string {
  return createHash('sha256').update(`bpftune\0${tuner}\0${scenario}`).digest('hex').slice(0, 32);
}

/** The fields of one change (or action, which has no old and new values). */
export function changeFields(change: {
  tuner: string;
  tunable: string;
  scenario: string;
  netnsCookie: bigint;
  old?: string;
  new?: string;
}): LogFields {
  const fields: Record<string, string> = {
    MESSAGE_ID: scenarioMessageId(change.tuner, change.scenario),
    BPFTUNE_TUNER: change.tuner,
    BPFTUNE_TUNABLE: change.tunable,
    BPFTUNE_SCENARIO: change.scenario,
    BPFTUNE_NETNS_COOKIE: change.netnsCookie.toString(),
  };
  if (change.old !== undefined) fields.BPFTUNE_OLD = change.old;
  if (change.new !== undefined) fields.BPFTUNE_NEW = change.new;
  return fields;
}

/**
 * True when systemd connected our stderr to the journal ($JOURNAL_STREAM is
 * "<device>:<inode>" of that stream): writing a line there and sending it
 * natively would put it in the journal twice.
 */
export function stderrIsJournal(env: NodeJS.ProcessEnv = process.env): boolean {
  const stream = env.JOURNAL_STREAM;
  if (!stream) return false;
  try {
    const st = fstatSync(2);
    return stream === `${st.dev}:${st.ino}`;
  } catch {
    return false;
  }
}

/**
 * Sends each line as a journal entry (priority, identifier, facility daemon
 * as syslog would, plus the line's fields). A line the journal does not take
 * (socket gone, journald restarting) goes to fallback instead, so none is lost.
 */
export function journalSink(send: (path: string, data: Buffer) => void, fallback: LogSink, socketPath = journalSocketPath()): LogSink {
  return (level: LogLevel, message: string, fields?: LogFields) => {
    try {
      send(
        socketPath,
        encodeJournalEntry({
          MESSAGE: message,
          PRIORITY: String(SYSLOG_PRIORITY[level]),
          SYSLOG_IDENTIFIER: 'bpftune',
          SYSLOG_FACILITY: '3',
          ...fields,
        }),
      );
    } catch {
      fallback(level, message, fields);
    }
  };
}
