import type { TunerContext } from '../../core/tuner';

export class SynFloodWatch {
  constructor(private readonly ctx: TunerContext) {}
  async check(): Promise<void> {
    await Promise.resolve(this.ctx);
  }
}
