/**
 * systemd's readiness protocol (sd_notify(3)): with Type=notify, systemd
 * counts the service as started only when it says READY=1, which bpftune
 * does once its tuners are loaded; STATUS= is the line `systemctl status`
 * shows. Outside systemd ($NOTIFY_SOCKET unset) every call does nothing.
 */
export class ServiceNotifier {
  private lastStatus: string | undefined;

  constructor(
    private readonly socketPath: string | undefined,
    private readonly send: (path: string, data: Buffer) => void,
    private readonly onError: (message: string) => void,
  ) {}

  /** Takes $NOTIFY_SOCKET out of the environment, so no child process answers for us. */
  static fromEnvironment(send: (path: string, data: Buffer) => void, onError: (message: string) => void): ServiceNotifier {
    const socketPath = process.env.NOTIFY_SOCKET || undefined;
    delete process.env.NOTIFY_SOCKET;
    return new ServiceNotifier(socketPath, send, onError);
  }

  get active(): boolean {
    return this.socketPath !== undefined;
  }

  ready(status: string): void {
    this.lastStatus = status;
    this.notify(`READY=1\nSTATUS=${status}`);
  }

  /** Sends STATUS= only when it differs from the last one sent. */
  status(status: string): void {
    if (status === this.lastStatus) return;
    this.lastStatus = status;
    this.notify(`STATUS=${status}`);
  }

  stopping(status: string): void {
    this.lastStatus = status;
    this.notify(`STOPPING=1\nSTATUS=${status}`);
  }

  private notify(message: string): void {
    if (this.socketPath === undefined) return;
    try {
      this.send(this.socketPath, Buffer.from(message));
    } catch (err) {
      // systemd would then time the start out or keep an old status: say why.
      this.onError(`could not notify systemd at ${this.socketPath} (${message.split('\n')[0]}): ${(err as Error).message}`);
    }
  }
}
