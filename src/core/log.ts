/**
 * Logging: syslog by default (as the reference does), stderr with -s.
 * Messages are plain text lines; the compat lines in shared/compat.md are
 * produced by their callers verbatim, so nothing is prefixed to them here.
 */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

/** syslog(3) priorities. */
const SYSLOG_PRIORITY: Record<LogLevel, number> = { error: 3, warn: 4, info: 6, debug: 7 };

export interface Logger {
  error(message: string): void;
  warn(message: string): void;
  info(message: string): void;
  debug(message: string): void;
  readonly debugEnabled: boolean;
}

export type LogSink = (level: LogLevel, message: string) => void;

export function stderrSink(): LogSink {
  return (_level, message) => {
    process.stderr.write(message.endsWith('\n') ? message : `${message}\n`);
  };
}

export function syslogSink(syslog: (priority: number, message: string) => void): LogSink {
  return (level, message) => syslog(SYSLOG_PRIORITY[level], message);
}

export function createLogger(sink: LogSink, debugEnabled: boolean): Logger {
  return {
    debugEnabled,
    error: (m) => sink('error', m),
    warn: (m) => sink('warn', m),
    info: (m) => sink('info', m),
    debug: (m) => {
      if (debugEnabled) sink('debug', m);
    },
  };
}

/** Describes any thrown value in one line, for "what failed" messages. */
export function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
