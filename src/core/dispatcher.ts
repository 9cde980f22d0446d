/**
 * The shared ring buffer and its dispatch: each sample is decoded once and
 * handed to the tuner whose id it carries. A handler that throws or rejects
 * is counted and logged; the tuner and the others keep running.
 */
import { decodeEvent, type TunerEvent } from './event';
import { errorText, type Logger } from './log';
import type { NativeBinding, NativeRingBuffer } from './native';
import type { LoadedTuner } from './tuner-loader';

const RING_BUFFER_BYTES = 256 * 1024;

export class Dispatcher {
  private readonly byId = new Map<number, LoadedTuner>();
  private readonly handledListeners: Array<(tuner: string, seconds: number) => void> = [];
  private ring: NativeRingBuffer | undefined;

  constructor(
    private readonly nativeBinding: NativeBinding,
    private readonly log: Logger,
    /** Told of each event's namespace before its tuner is: an event proves the namespace is alive. */
    private readonly namespaceAlive: (cookie: bigint) => void = () => undefined,
  ) {}

  start(): void {
    this.ring = this.nativeBinding.createRingBuffer(RING_BUFFER_BYTES, (samples) => this.dispatch(samples));
  }

  /** The ring buffer map's fd, which every tuner object reuses. */
  ringFd(): number {
    if (!this.ring) throw new Error('host not started');
    return this.ring.fd;
  }

  add(tuner: LoadedTuner): void {
    this.byId.set(tuner.id, tuner);
  }

  remove(tuner: LoadedTuner): void {
    this.byId.delete(tuner.id);
  }

  /** Hears each event whose handler finished without error: seconds from BPF posting it to the handler done. */
  onEventHandled(listener: (tuner: string, seconds: number) => void): void {
    this.handledListeners.push(listener);
  }

  close(): void {
    this.ring?.close();
    this.ring = undefined;
  }

  private dispatch(samples: Buffer[]): void {
    const received = process.hrtime.bigint();
    for (const sample of samples) {
      let event: TunerEvent;
      try {
        event = decodeEvent(sample);
      } catch (err) {
        this.log.warn(`dropping malformed ring buffer sample: ${errorText(err)}`);
        continue;
      }
      this.namespaceAlive(event.netnsCookie);
      const tuner = this.byId.get(event.tunerId);
      if (!tuner?.instance.event) continue;
      tuner.events++;
      for (const sampler of tuner.samplers) sampler.sawEvent(event.scenarioId);
      tuner.latency.add(Number(received - event.ktimeNs));
      const ktimeNs = event.ktimeNs;
      const handled = this.handledListeners.length ? () => this.eventHandled(tuner, ktimeNs) : undefined;
      try {
        const result = tuner.instance.event(event);
        if (result instanceof Promise) {
          result.then(handled, (err) => this.handlerFailed(tuner, err));
        } else {
          handled?.();
        }
      } catch (err) {
        this.handlerFailed(tuner, err);
      }
    }
  }

  private eventHandled(tuner: LoadedTuner, ktimeNs: bigint): void {
    const seconds = Number(process.hrtime.bigint() - ktimeNs) / 1e9;
    for (const listener of this.handledListeners) listener(tuner.definition.name, seconds);
  }

  private handlerFailed(tuner: LoadedTuner, err: unknown): void {
    tuner.eventErrors++;
    this.log.error(`tuner '${tuner.definition.name}': event handler failed: ${errorText(err)}; event dropped, tuner keeps running`);
  }
}
