/**
 * Stopping a command that reads a stream (`tcpdump -w - | netpol-audit collect pcap -`, `audit -`):
 * the first SIGINT or SIGTERM asks it to stop reading and finish as if the input had ended (flows
 * flushed, the run recorded, the summary printed); a second one exits at once, with the shell's
 * status for that signal (130, 143).
 */
export interface StopSignals {
  readonly signal: AbortSignal;
  /** The signal that stopped the command, if one did. */
  readonly by: NodeJS.Signals | undefined;
  dispose(): void;
}

const STATUS: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143 };

export function stopOnSignals(signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM']): StopSignals {
  const ac = new AbortController();
  let by: NodeJS.Signals | undefined;
  const handler = (sig: NodeJS.Signals) => {
    if (by !== undefined) process.exit(STATUS[sig] ?? 1);
    by = sig;
    ac.abort(new Error(`stopped by ${sig}`));
  };
  for (const s of signals) process.on(s, handler);
  return {
    signal: ac.signal,
    get by() {
      return by;
    },
    dispose() {
      for (const s of signals) process.off(s, handler);
    },
  };
}
