import type { Admin } from 'kafkajs';
import type { KafkaSettings } from './settings.js';

/**
 * Creates the pipeline's topics if they are missing and waits until every partition has a leader.
 * kafkajs' createTopics({waitForLeaders}) gives up on the UNKNOWN_TOPIC_OR_PARTITION a KRaft broker
 * answers until its metadata image has caught up with the controller (docs/kafka.md), so creation
 * and the wait for leaders are separate, and both are retried.
 */
export async function ensureTopics(
  admin: Admin,
  settings: KafkaSettings,
  which: (keyof KafkaSettings['topics'])[] = ['flows', 'violations', 'deadLetter', 'verdicts'],
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const wanted = which.map((k) => ({
    topic: settings.topics[k],
    numPartitions: settings.partitions[k],
    replicationFactor: settings.replicationFactor,
  }));
  for (;;) {
    try {
      const existing = new Set(await admin.listTopics());
      const missing = wanted.filter((t) => !existing.has(t.topic));
      if (missing.length > 0) await admin.createTopics({ topics: missing, waitForLeaders: false });
      break;
    } catch (err) {
      // TOPIC_ALREADY_EXISTS: another process created it between listTopics and createTopics.
      const type = (err as { type?: string }).type;
      if (type === 'TOPIC_ALREADY_EXISTS') break;
      if (Date.now() > deadline) throw err;
      await sleep(200);
    }
  }
  for (const t of wanted) {
    for (;;) {
      const meta = await admin.fetchTopicMetadata({ topics: [t.topic] }).catch(() => undefined);
      const parts = meta?.topics[0]?.partitions ?? [];
      if (parts.length > 0 && parts.every((p) => p.leader >= 0)) break;
      if (Date.now() > deadline)
        throw new Error(`topic ${t.topic}: partitions have no leader after ${timeoutMs} ms`);
      await sleep(100);
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
