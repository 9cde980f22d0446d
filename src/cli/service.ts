/**
 * The daemon as a systemd service: READY=1 once its tuners are loaded, a
 * STATUS= line that follows the changes it makes (each change is logged
 * with fields, so the log sink is where we hear of it), STOPPING=1 on exit.
 */
import type { Daemon } from '../core/daemon';
import type { LogSink } from '../core/log';
import { ServiceNotifier } from '../core/service-notify';

export class ServiceStatus {
  private daemon: Daemon | undefined;
  private pending = false;

  constructor(private readonly notifier: ServiceNotifier) {}

  static fromEnvironment(send: (path: string, data: Buffer) => void, onError: (message: string) => void): ServiceStatus {
    return new ServiceStatus(ServiceNotifier.fromEnvironment(send, onError));
  }

  /** Passes every line on to sink; a line with fields is a change, so the status is refreshed after it. */
  watch(sink: LogSink): LogSink {
    return (level, message, fields) => {
      sink(level, message, fields);
      if (fields && this.daemon && this.notifier.active && !this.pending) {
        // A change logs two lines: send one status for both.
        this.pending = true;
        setImmediate(() => {
          this.pending = false;
          if (this.daemon) this.notifier.status(this.text(this.daemon));
        });
      }
    };
  }

  ready(daemon: Daemon): void {
    this.daemon = daemon;
    this.notifier.ready(this.text(daemon));
  }

  stopping(): void {
    const changes = this.daemon?.tunables.writeCount ?? 0;
    this.daemon = undefined;
    this.notifier.stopping(`stopping; ${changes} changes made`);
  }

  private text(daemon: Daemon): string {
    const tuners = daemon.host.tuners().length;
    return `${tuners} tuners loaded; ${daemon.tunables.writeCount} changes made`;
  }
}
