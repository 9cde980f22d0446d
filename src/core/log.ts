/**
 * Logging: syslog by default (as the reference does), stderr with -s.
 * Messages are plain text lines; the compat lines in shared/compat.md are
 * produced by their callers verbatim, so nothing is prefixed to them here.
 */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

/** syslog(3) priorities. */
export const SYSLOG_PRIORITY: Record<LogLevel, number> = { error: 3, warn: 4, info: 6, debug: 7 };

/**
 * Structured fields of a line (a change's tuner, tunable, values...), sent
 * as journal fields where the journal receives the log; other sinks print
 * the message alone.
 */
export type LogFields = Readonly<Record<string, string>>;

export interface Logger {
  error(message: string): void;
  warn(message: string): void;
  info(message: string, fields?: LogFields): void;
  debug(message: string): void;
  readonly debugEnabled: boolean;
}

export type LogSink = (level: LogLevel, message: string, fields?: LogFields) => void;

/**
 * stderr, until it breaks (the reader went away: EPIPE). Then the lines go to
 * `fallback` (syslog in the daemon): without an error listener the failed
 * write became an uncaught exception, whose own log line failed again, and a
 * daemon whose terminal or pipe was gone spun on that loop and missed SIGTERM.
 */
export function stderrSink(fallback: () => LogSink = () => () => undefined): LogSink {
  let broken: LogSink | undefined;
  let listening = false;
  return (level, message, fields) => {
    if (broken) return broken(level, message, fields);
    if (!listening) {
      listening = true;
      process.stderr.on('error', () => {
        broken ??= fallback();
      });
    }
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
    info: (m, fields) => sink('info', m, fields),
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
