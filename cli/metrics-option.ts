import { Metrics, serveMetrics } from '../metrics/index.js';

/** `--metrics-listen` for the long-running commands (process, collect live|conntrack|pcap). */
export const METRICS_OPTION = { 'metrics-listen': { type: 'string' } } as const;

export const METRICS_USAGE =
  '      --metrics-listen A   serve Prometheus metrics on A (HOST:PORT or :PORT) at /metrics (docs/metrics.md)';

/** Starts the endpoint when asked; `register` tells the metrics what to read. Returns how to stop it. */
export async function startMetrics(
  command: string,
  listen: string | undefined,
  register: (m: Metrics) => void,
): Promise<() => Promise<void>> {
  if (listen === undefined) return async () => {};
  const metrics = new Metrics();
  register(metrics);
  const server = await serveMetrics(listen, metrics);
  process.stderr.write(`${command}: metrics at ${server.url}\n`);
  return () => server.close();
}
