import type { JudgedFlow, JudgedSink } from './types.js';

/** Every judged flow to each of several sinks, in order; a sink's back-pressure holds the others. */
export class TeeSink implements JudgedSink {
  constructor(private readonly sinks: readonly JudgedSink[]) {}

  async write(judged: JudgedFlow): Promise<void> {
    for (const s of this.sinks) {
      const wait = s.write(judged);
      if (wait) await wait;
    }
  }

  async flush(): Promise<void> {
    for (const s of this.sinks) await s.flush();
  }
}

/** Calls `observe` for each judged flow before passing it on (counters, the audit's placement check). */
export class TapSink implements JudgedSink {
  constructor(
    private readonly next: JudgedSink,
    private readonly observe: (judged: JudgedFlow) => void,
  ) {}

  write(judged: JudgedFlow): void | Promise<void> {
    this.observe(judged);
    return this.next.write(judged);
  }

  flush(): Promise<void> {
    return this.next.flush();
  }
}
