/**
 * Waiting for output that arrives in pieces (a daemon's log, datagrams):
 * each wait re-checks whenever the owner calls poke(), and gives up after a
 * time limit or once fail() says it never will succeed.
 */
export class OutputWaiters {
  private waiters: Array<() => void> = [];

  /** New output (or an exit): re-run every pending check. */
  poke(): void {
    for (const w of [...this.waiters]) w();
  }

  wait<T>(found: () => T | undefined, timeoutMs: number, timeoutError: () => Error, fail: () => Error | undefined = () => undefined): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const value = found();
        const failure = value === undefined ? fail() : undefined;
        if (value !== undefined) resolve(value);
        else if (failure) reject(failure);
        else return;
        done();
      };
      const timer = setTimeout(() => {
        done();
        reject(timeoutError());
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
      };
      this.waiters.push(check);
      check();
    });
  }
}
